# Fixture for tests/terraform/run.sh: inputs that each pass their own validation but break a
# check of two variables together (a lifecycle precondition), so `terraform plan` must fail and
# name each of them. Planned against the local moto server, never applied.

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

# No admin source at all: admin_cidrs may be empty only with admin_security_group_ids.
module "no_admin_source" {
  source = "../../../terraform"

  cluster_name = "sb-noadmin"
  vpc_id       = "vpc-0123456789abcdef0"
  subnet_ids   = ["subnet-0123456789abcdef0"]
  ami_id       = "ami-04681a1dbd79675a5"
  admin_cidrs  = []
}

# More workers wanted than the group may hold.
module "too_many_workers" {
  source = "../../../terraform"

  cluster_name            = "sb-toomany"
  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-0123456789abcdef0"]
  ami_id                  = "ami-04681a1dbd79675a5"
  admin_cidrs             = ["127.0.0.1/32"]
  worker_max_size         = 3
  worker_desired_capacity = 5
}
