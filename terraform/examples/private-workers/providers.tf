# With every variable at its default this is a plain AWS provider: credentials and region come
# from the usual places. tests/terraform/run.sh points it at a local moto server by setting
# aws_endpoint and the skip_* variables; null endpoint values mean "the real AWS endpoint".

provider "aws" {
  region = var.region

  skip_credentials_validation = var.skip_credentials_validation
  skip_metadata_api_check     = var.skip_metadata_api_check
  skip_requesting_account_id  = var.skip_requesting_account_id
  s3_use_path_style           = var.s3_use_path_style

  endpoints {
    autoscaling = var.aws_endpoint
    ec2         = var.aws_endpoint
    events      = var.aws_endpoint
    iam         = var.aws_endpoint
    kms         = var.aws_endpoint
    route53     = var.aws_endpoint
    s3          = var.aws_endpoint
    sqs         = var.aws_endpoint
    ssm         = var.aws_endpoint
    sts         = var.aws_endpoint
  }
}
