# Fixture for tests/terraform/run.sh: the module's switches and real-estate inputs, planned (never
# applied) against the local moto server; checks.py toggles reads the plan.
#  - off:     create = false: no resource at all, outputs still evaluate (to null).
#  - nowatch: enable_watch = false, plus every real-estate input set to a non-default value,
#             including the deprecated associate_public_ip_address (which must warn).
#  - split:   a public master with private workers, and a longer launch hook.
# The IDs are made up: a plan looks none of them up (only the AMI, one of moto's built-in ones).

variable "aws_endpoint" {
  description = "The local moto server, for example \"http://127.0.0.1:5000\"."
  type        = string
}

provider "aws" {
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true

  endpoints {
    autoscaling = var.aws_endpoint
    ec2         = var.aws_endpoint
    events      = var.aws_endpoint
    iam         = var.aws_endpoint
    route53     = var.aws_endpoint
    s3          = var.aws_endpoint
    sqs         = var.aws_endpoint
    ssm         = var.aws_endpoint
    sts         = var.aws_endpoint
  }
}

locals {
  common = {
    vpc_id     = "vpc-0123456789abcdef0"
    subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    ami_id     = "ami-04681a1dbd79675a5"
  }
}

module "off" {
  source = "../../../terraform"

  create       = false
  cluster_name = "sb-off"
  vpc_id       = local.common.vpc_id
  subnet_ids   = local.common.subnet_ids
  admin_cidrs  = ["127.0.0.1/32"]
  ami_id       = local.common.ami_id
}

module "nowatch" {
  source = "../../../terraform"

  enable_watch = false
  cluster_name = "sb-nowatch"
  vpc_id       = local.common.vpc_id
  subnet_ids   = local.common.subnet_ids
  ami_id       = local.common.ami_id

  admin_cidrs                 = ["127.0.0.1/32"]
  admin_security_group_ids    = ["sg-0ccccccccccccccc3"]
  master_security_group_ids   = ["sg-0aaaaaaaaaaaaaaa1"]
  worker_security_group_ids   = ["sg-0bbbbbbbbbbbbbbb2"]
  associate_public_ip_address = true # deprecated: must still apply to both roles, and warn

  worker_on_demand_base_capacity                  = 2
  worker_on_demand_percentage_above_base_capacity = 25

  extra_egress_rules = [
    { description = "NTP to the site time servers", protocol = "udp", from_port = 123, to_port = 123, cidr_blocks = ["10.0.0.0/8"] },
    { description = "Everything to the shared-services VPC", protocol = "-1", cidr_blocks = ["10.1.0.0/16"] },
  ]

  node_role_permissions_boundary = "arn:aws:iam::123456789012:policy/site-boundary"
  node_role_policy_arns          = { ssm = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" }
}

module "split" {
  source = "../../../terraform"

  cluster_name = "sb-split"
  vpc_id       = local.common.vpc_id
  subnet_ids   = local.common.subnet_ids
  ami_id       = local.common.ami_id
  admin_cidrs  = ["127.0.0.1/32"]

  master_associate_public_ip_address = true
  worker_associate_public_ip_address = false
  launch_hook_heartbeat_timeout      = 930
}

output "off" {
  description = "Every output of the module with create = false."
  value       = module.off
}

output "nowatch" {
  description = "Every output of the module with enable_watch = false."
  value       = module.nowatch
}
