# Shared values of the module: switches, names, tags, the AMI and the region. Each concern has
# its own file: security_group.tf, dns.tf, iam.tf, s3.tf, user_data.tf, master.tf, workers.tf,
# watch.tf (spot-churn plumbing) and moved.tf (state addresses of earlier versions).

# The AMI comes from ami_id, or else from a public SSM parameter (Debian 12 by default).
data "aws_ssm_parameter" "ami" {
  count = local.create && var.ami_id == null ? 1 : 0

  name = var.ami_ssm_parameter
}

# Looked up for its root device name, so the launch template's encrypted volume replaces the
# AMI's root volume instead of being attached as a second disk.
data "aws_ami" "node" {
  count = local.create ? 1 : 0

  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

locals {
  create = var.create
  # Every resource of watch.tf, and the watcher's IAM policy, exist only with this.
  watch = local.create && var.enable_watch

  ami_id = var.ami_id != null ? var.ami_id : one(data.aws_ssm_parameter.ami[*].insecure_value)

  # The provider's region, read from the regional ARN the provider builds for the AMI
  # (arn:PARTITION:ec2:REGION::image/ID), which is known at plan time. data.aws_region would be
  # the obvious source, but its `name` is deprecated in provider 6.x, its replacement `region`
  # does not exist in 5.x, and later 6.x releases deprecate `id` as well.
  region = local.create ? split(":", data.aws_ami.node[0].arn)[3] : null

  worker_asg_name = "${var.cluster_name}-workers"

  dns_zone_name    = coalesce(var.dns_zone_name, "${var.cluster_name}.sparkboot.internal")
  master_subnet_id = coalesce(var.master_subnet_id, var.subnet_ids[0])

  # Public addresses per role; the deprecated associate_public_ip_address fills in for either.
  master_public_ip = coalesce(var.master_associate_public_ip_address, var.associate_public_ip_address, false)
  worker_public_ip = coalesce(var.worker_associate_public_ip_address, var.associate_public_ip_address, false)

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

# A warning (not an error) on every plan while the deprecated input is set.
check "associate_public_ip_address_is_deprecated" {
  assert {
    condition     = var.associate_public_ip_address == null
    error_message = "associate_public_ip_address is deprecated: set master_associate_public_ip_address and worker_associate_public_ip_address instead (it still fills in for whichever of them is null)."
  }
}
