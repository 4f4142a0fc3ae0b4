# A complete, runnable example: a small VPC with public subnets (internet gateway, no NAT), an S3
# gateway endpoint so bucket traffic stays on the AWS network, and the sparkboot module on top.
#
#   terraform init
#   terraform apply -var 'admin_cidrs=["203.0.113.10/32"]' -var key_name=my-key
#   sparkboot converge --inventory terraform:.

# Zones are pinned by name (the region's "a" to "f" zones that exist), so the subnets' placement
# never shifts when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in ["a", "b", "c", "d", "e", "f"] : "${var.region}${suffix}"]
  }
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:Throw-away example VPC; flow logs need a log destination whose retention and cost are a site decision. The module itself takes the caller's (logged) VPC.
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.cluster_name}-vpc" }
}

# Take every rule away from the VPC's default security group; the module brings its own.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.cluster_name}-default-deny" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "${var.cluster_name}-igw" }
}

resource "aws_subnet" "this" {
  count = length(var.subnet_cidrs)

  vpc_id            = aws_vpc.this.id
  cidr_block        = var.subnet_cidrs[count.index]
  availability_zone = data.aws_availability_zones.available.names[count.index % length(data.aws_availability_zones.available.names)]

  tags = { Name = "${var.cluster_name}-${count.index}" }
}

resource "aws_route_table" "this" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.cluster_name}-public" }
}

resource "aws_route_table_association" "this" {
  count = length(aws_subnet.this)

  subnet_id      = aws_subnet.this[count.index].id
  route_table_id = aws_route_table.this.id
}

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.this.id]

  tags = { Name = "${var.cluster_name}-s3" }
}

module "spark" {
  source = "../.."

  cluster_name                       = var.cluster_name
  vpc_id                             = aws_vpc.this.id
  subnet_ids                         = aws_subnet.this[*].id
  admin_cidrs                        = var.admin_cidrs
  master_associate_public_ip_address = var.associate_public_ip_address
  worker_associate_public_ip_address = var.associate_public_ip_address
  expose_spark_ui                    = var.expose_spark_ui
  key_name                           = var.key_name
  ami_id                             = var.ami_id
  ssh_user                           = var.ssh_user
  master_instance_type               = var.master_instance_type
  worker_instance_types              = var.worker_instance_types
  worker_min_size                    = 0
  worker_max_size                    = max(10, var.worker_desired_capacity)
  worker_desired_capacity            = var.worker_desired_capacity
  force_destroy                      = var.force_destroy

  tags = { Project = "sparkboot-example" }

  # Nodes get their route out before they boot, and on destroy the instances (with their
  # public addresses) go before the internet gateway, which AWS refuses to detach while any
  # address in the VPC is still mapped.
  depends_on = [aws_route_table_association.this]
}
