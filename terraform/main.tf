# Shared values of the module: names, tags, the AMI and the region. Each concern has its own file:
# security_group.tf, dns.tf, iam.tf, s3.tf, user_data.tf, master.tf, workers.tf.

data "aws_region" "current" {}

data "aws_partition" "current" {}

# The AMI comes from ami_id, or else from a public SSM parameter (Debian 12 by default).
data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0

  name = var.ami_ssm_parameter
}

# Looked up for its root device name, so the launch template's encrypted volume replaces the
# AMI's root volume instead of being attached as a second disk.
data "aws_ami" "node" {
  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.ami[0].insecure_value

  dns_zone_name    = coalesce(var.dns_zone_name, "${var.cluster_name}.sparkboot.internal")
  master_subnet_id = coalesce(var.master_subnet_id, var.subnet_ids[0])

  # sparkboot finds nodes by these two tags (and the ASG name); every node carries them.
  cluster_tag_key = "sparkboot:cluster"
  role_tag_key    = "sparkboot:role"

  common_tags = merge(var.tags, {
    (local.cluster_tag_key) = var.cluster_name
  })

  master_tags = merge(local.common_tags, {
    Name                 = "${var.cluster_name}-master"
    (local.role_tag_key) = "master"
  })

  worker_tags = merge(local.common_tags, {
    Name                 = "${var.cluster_name}-worker"
    (local.role_tag_key) = "worker"
  })
}
