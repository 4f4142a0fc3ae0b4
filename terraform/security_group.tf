# One security group for every node of the cluster.
#  - Inside the cluster, all traffic is open through a self-reference (Spark's RPC, block manager
#    and shuffle ports are dynamic, and the master SSHes to the workers).
#  - From outside, SSH only from admin_cidrs and admin_security_group_ids; the Spark UIs only
#    when expose_spark_ui is set, and again only from those sources.
#  - Egress is HTTPS and HTTP: enough for OS packages, the Spark download and S3, plus the
#    caller's extra_egress_rules. DNS (the VPC resolver), NTP (169.254.169.123) and instance
#    metadata are not filtered by security groups.
# master_security_group_ids and worker_security_group_ids attach further groups per role.

locals {
  spark_ui_ports = {
    master-ui      = 8080
    worker-ui      = 8081
    application-ui = 4040
  }

  # Where operators and sparkboot connect from: CIDR blocks and security groups, keyed by the
  # source itself so adding or removing one never touches the others.
  admin_sources = merge(
    { for cidr in var.admin_cidrs : cidr => { cidr = cidr, group = null, label = "admin CIDR ${cidr}" } },
    { for sg in var.admin_security_group_ids : sg => { cidr = null, group = sg, label = "admin group ${sg}" } },
  )

  ssh_rules = local.create ? local.admin_sources : {}

  spark_ui_rules = local.create && var.expose_spark_ui ? {
    for pair in setproduct(keys(local.spark_ui_ports), keys(local.admin_sources)) :
    "${pair[0]}-${pair[1]}" => merge(local.admin_sources[pair[1]], { name = pair[0], port = local.spark_ui_ports[pair[0]] })
  } : {}

  # One security group rule per (rule, CIDR block), keyed by what the rule allows, so
  # reordering extra_egress_rules changes nothing.
  extra_egress_rules = local.create ? merge([
    for r in var.extra_egress_rules : {
      for cidr in r.cidr_blocks :
      "${r.protocol}/${r.from_port == null ? "all" : r.from_port}-${r.to_port == null ? "all" : r.to_port}/${cidr}" => merge(r, { cidr = cidr })
    }
  ]...) : {}
}

resource "aws_security_group" "cluster" {
  count = local.create ? 1 : 0

  name_prefix = "${var.cluster_name}-nodes-"
  description = "sparkboot cluster ${var.cluster_name}: intra-cluster traffic, SSH from admin CIDRs, HTTP(S) egress"
  vpc_id      = var.vpc_id

  tags = merge(local.common_tags, { Name = "${var.cluster_name}-nodes" })

  lifecycle {
    create_before_destroy = true

    # Checks of two variables together (validation blocks may only see their own variable).
    precondition {
      condition     = length(local.admin_sources) >= 1 && length(local.admin_sources) <= 14
      error_message = "admin_cidrs and admin_security_group_ids together must name 1 to 14 sources: SSH needs at least one, and 14 keep SSH plus the three Spark UIs within the default quota of 60 inbound rules per security group."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "intra_cluster" {
  count = local.create ? 1 : 0

  security_group_id            = aws_security_group.cluster[0].id
  description                  = "All traffic between the nodes of the cluster"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster[0].id

  tags = local.common_tags
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = local.ssh_rules

  security_group_id            = aws_security_group.cluster[0].id
  description                  = "SSH from ${each.value.label}"
  ip_protocol                  = "tcp"
  from_port                    = 22
  to_port                      = 22
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.group

  tags = local.common_tags
}

resource "aws_vpc_security_group_ingress_rule" "spark_ui" {
  for_each = local.spark_ui_rules

  security_group_id            = aws_security_group.cluster[0].id
  description                  = "Spark ${each.value.name} from ${each.value.label}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.group

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "intra_cluster" {
  count = local.create ? 1 : 0

  security_group_id            = aws_security_group.cluster[0].id
  description                  = "All traffic between the nodes of the cluster"
  ip_protocol                  = "-1"
  referenced_security_group_id = aws_security_group.cluster[0].id

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.cluster[0].id
  description       = "HTTPS out: OS packages, the Spark download, S3 and other AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "http" {
  count = local.create ? 1 : 0

  security_group_id = aws_security_group.cluster[0].id
  description       = "HTTP out: OS package mirrors that serve signed packages over plain HTTP"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"

  tags = local.common_tags
}

resource "aws_vpc_security_group_egress_rule" "extra" {
  for_each = local.extra_egress_rules

  security_group_id = aws_security_group.cluster[0].id
  description       = each.value.description
  ip_protocol       = each.value.protocol
  from_port         = each.value.from_port
  to_port           = each.value.to_port
  cidr_ipv4         = each.value.cidr

  tags = local.common_tags
}
