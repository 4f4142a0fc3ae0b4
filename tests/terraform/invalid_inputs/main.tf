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

# The inputs added with the watch plumbing and the real-estate options, each broken once.
module "invalid_more" {
  source = "../../../terraform"

  cluster_name                                    = "sb-invalid"
  vpc_id                                          = "vpc-0123456789abcdef0"
  subnet_ids                                      = ["subnet-0123456789abcdef0"]
  admin_cidrs                                     = ["127.0.0.1/32"]
  admin_security_group_ids                        = ["sg-nothex"]
  master_security_group_ids                       = ["sg-0000000000000000a", "sg-0000000000000000b", "sg-0000000000000000c", "sg-0000000000000000d", "sg-0000000000000000e"]
  worker_security_group_ids                       = ["security-group"]
  launch_hook_heartbeat_timeout                   = 20
  terminate_hook_heartbeat_timeout                = 7201
  worker_on_demand_base_capacity                  = -1
  worker_on_demand_percentage_above_base_capacity = 101
  worker_wait_for_capacity_timeout                = "ten minutes"
  node_role_permissions_boundary                  = "site-boundary"
  node_role_policy_arns                           = { bad = "AmazonSSMManagedInstanceCore" }
  extra_egress_rules = [
    { description = "bad protocol", protocol = "gre", cidr_blocks = ["10.0.0.0/8"] },
    { description = "ports backwards", protocol = "tcp", from_port = 9000, to_port = 8000, cidr_blocks = ["10.0.0.0/8"] },
    { description = "not a network address", protocol = "-1", cidr_blocks = ["10.0.0.5/8"] },
    { description = "bad <description>", protocol = "-1", cidr_blocks = ["10.0.0.0/8"] },
  ]
}
