# One security group for every node of the cluster.
#  - Inside the cluster, all traffic is open through a self-reference (Spark's RPC, block manager
#    and shuffle ports are dynamic, and the master SSHes to the workers).
#  - From outside, SSH only from admin_cidrs; the Spark UIs only when expose_spark_ui is set,
#    and again only from admin_cidrs.
#  - Egress is HTTPS and HTTP: enough for OS packages, the Spark download and S3. DNS (the VPC
#    resolver), NTP (169.254.169.123) and instance metadata are not filtered by security groups.

locals {
  spark_ui_ports = {
    master-ui      = 8080
    worker-ui      = 8081
    application-ui = 4040
  }

  ssh_rules = { for cidr in var.admin_cidrs : cidr => cidr }

  spark_ui_rules = var.expose_spark_ui ? {
    for pair in setproduct(keys(local.spark_ui_ports), var.admin_cidrs) :
    "${pair[0]}-${pair[1]}" => { name = pair[0], port = local.spark_ui_ports[pair[0]], cidr = pair[1] }
  } : {}
}

resource "aws_security_group" "cluster" {
  name_prefix = "${var.cluster_name}-nodes-"
  description = "sparkboot cluster ${var.cluster_name}: intra-cluster traffic, SSH from admin CIDRs, HTTP(S) egress"
  vpc_id      = var.vpc_id

  tags = merge(local.common_tags, { Name = "${var.cluster_name}-nodes" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "intra_cluster" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "All traffic between the nodes of the cluster"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster.id

  tags = local.common_tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = local.ssh_rules

  security_group_id = aws_security_group.cluster.id
  description       = "SSH from admin CIDR ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value

  tags = local.common_tags
}

resource "aws_vpc_security_group_ingress_rule" "spark_ui" {
  for_each = local.spark_ui_rules

  security_group_id = aws_security_group.cluster.id
  description       = "Spark ${each.value.name} from admin CIDR ${each.value.cidr}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "intra_cluster" {
  security_group_id            = aws_security_group.cluster.id
  description                  = "All traffic between the nodes of the cluster"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster.id

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.cluster.id
  description       = "HTTPS out: OS packages, the Spark download, S3 and other AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.cluster.id
  description       = "HTTP out: OS package mirrors that serve signed packages over plain HTTP"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.common_tags
}
