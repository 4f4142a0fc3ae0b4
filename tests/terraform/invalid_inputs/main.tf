# Fixture for tests/terraform/run.sh: every input below breaks one validation rule of the
# module, so `terraform validate` must fail and name each of them. Not meant to be applied.

module "invalid" {
  source = "../../../terraform"

  cluster_name            = "Bad_Name"
  vpc_id                  = "vpc-nothex"
  subnet_ids              = []
  admin_cidrs             = ["0.0.0.0/0", "10.0.0.5/24"] // refused by validation, never contacted
  master_instance_type    = "t2.micro"
  worker_instance_types   = ["m5.large", "m5.large"]
  worker_min_size         = -1
  worker_max_size         = 0
  worker_desired_capacity = 1.5
  root_volume_type        = "standard"
  key_name                = ""
  ssh_user                = "Root User"
  tags                    = { "aws:reserved" = "x" }
}
