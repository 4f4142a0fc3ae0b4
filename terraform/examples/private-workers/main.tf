# Private workers behind a public master: the master has a public address and is the only node
# reachable from outside (SSH from admin_cidrs); the workers have none and sit in private
# subnets that reach the internet through a NAT gateway. sparkboot converges the workers
# through the master as an SSH jump host (`[aws] jump_host = "master"`).
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

locals {
  zones = data.aws_availability_zones.available.names
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

# --- Public subnet: the master and the NAT gateway. ---

resource "aws_subnet" "public" {
  vpc_id            = aws_vpc.this.id
  cidr_block        = var.public_subnet_cidr
  availability_zone = local.zones[0]

  tags = { Name = "${var.cluster_name}-public" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = { Name = "${var.cluster_name}-public" }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  domain = "vpc"

  tags = { Name = "${var.cluster_name}-nat" }

  depends_on = [aws_internet_gateway.this]
}

# One NAT gateway, in the public subnet's zone: enough for an example (a zone outage cuts the
# other zones' workers off from the internet; production sites use one per zone).
resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public.id

  tags = { Name = "${var.cluster_name}-nat" }

  depends_on = [aws_internet_gateway.this]
}

# --- Private subnets: the workers, one per zone. ---

resource "aws_subnet" "private" {
  count = length(var.private_subnet_cidrs)

  vpc_id            = aws_vpc.this.id
  cidr_block        = var.private_subnet_cidrs[count.index]
  availability_zone = local.zones[count.index % length(local.zones)]

  tags = { Name = "${var.cluster_name}-private-${count.index}" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this.id
  }

  tags = { Name = "${var.cluster_name}-private" }
}

resource "aws_route_table_association" "private" {
  count = length(aws_subnet.private)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# Bucket traffic (Spark's event logs and data, the s3 distribution) stays on the AWS network
# and does not pay for the NAT gateway.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id, aws_route_table.private.id]

  tags = { Name = "${var.cluster_name}-s3" }
}

module "spark" {
  source = "../.."

  cluster_name = var.cluster_name
  vpc_id       = aws_vpc.this.id
  # Workers in the private subnets; the master in the public one.
  subnet_ids       = aws_subnet.private[*].id
  master_subnet_id = aws_subnet.public.id

  master_associate_public_ip_address = true
  worker_associate_public_ip_address = false

  admin_cidrs              = var.admin_cidrs
  admin_security_group_ids = var.admin_security_group_ids
  key_name                 = var.key_name
  ami_id                   = var.ami_id
  ssh_user                 = var.ssh_user
  master_instance_type     = var.master_instance_type
  worker_instance_types    = var.worker_instance_types
  worker_min_size          = 0
  worker_max_size          = max(10, var.worker_desired_capacity)
  worker_desired_capacity  = var.worker_desired_capacity

  # A few workers on-demand keep executors through a spot drought; the rest are spot.
  worker_on_demand_base_capacity                  = var.worker_on_demand_base_capacity
  worker_on_demand_percentage_above_base_capacity = 0

  master_security_group_ids = [aws_security_group.site.id]
  worker_security_group_ids = [aws_security_group.site.id]
  extra_egress_rules        = var.extra_egress_rules
  node_role_policy_arns     = var.node_role_policy_arns

  force_destroy = var.force_destroy

  tags = { Project = "sparkboot-example-private-workers" }

  # Nodes get their route out before they boot; on destroy the instances go before the NAT
  # gateway and the internet gateway.
  depends_on = [aws_route_table_association.public, aws_route_table_association.private, aws_nat_gateway.this]
}

# A site-wide group on every node, standing in for what a site attaches to all its machines:
# here it lets a monitoring host inside the VPC scrape a metrics exporter on port 9100.
resource "aws_security_group" "site" {
  name_prefix = "${var.cluster_name}-site-"
  description = "Site-wide group of the example's nodes: metrics scraping from inside the VPC"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.cluster_name}-site" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "site_metrics" {
  security_group_id = aws_security_group.site.id
  description       = "Metrics exporter (9100) from inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 9100
  to_port           = 9100
  cidr_ipv4         = var.vpc_cidr
}
