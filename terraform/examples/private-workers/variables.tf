# Inputs of the private-workers example. Only admin_cidrs is required; the provider settings at
# the bottom exist so tests can run the example against a local AWS emulator.

variable "region" {
  description = "AWS region to build the example in."
  type        = string
  default     = "eu-west-1"
}

variable "cluster_name" {
  description = "Name of the cluster (see the module's cluster_name)."
  type        = string
  default     = "sparkboot-private"
}

variable "admin_cidrs" {
  description = "IPv4 CIDR blocks allowed to SSH to the nodes (in practice to the master, the only node with a public address): the address you run sparkboot from, e.g. [\"203.0.113.10/32\"]."
  type        = list(string)
}

variable "admin_security_group_ids" {
  description = "Security groups whose members may SSH to the nodes as well (for example a bastion's group in this VPC)."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR block of the example's VPC."
  type        = string
  default     = "10.43.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block written with its network address, such as \"10.43.0.0/16\"."
  }
}

variable "public_subnet_cidr" {
  description = "CIDR block of the public subnet (the master and the NAT gateway), inside vpc_cidr."
  type        = string
  default     = "10.43.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.public_subnet_cidr)) && try(cidrsubnet(var.public_subnet_cidr, 0, 0) == var.public_subnet_cidr, false)
    error_message = "public_subnet_cidr must be an IPv4 CIDR block written with its network address, such as \"10.43.0.0/24\"."
  }
}

variable "private_subnet_cidrs" {
  description = "CIDR blocks of the workers' private subnets, one per availability zone (in zone order), all inside vpc_cidr. Several zones give the spot workers more capacity pools."
  type        = list(string)
  default     = ["10.43.1.0/24", "10.43.2.0/24"]

  validation {
    condition     = length(var.private_subnet_cidrs) > 0 && alltrue([for c in var.private_subnet_cidrs : can(cidrnetmask(c)) && try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "private_subnet_cidrs must list at least one IPv4 CIDR block, each written with its network address, such as \"10.43.1.0/24\"."
  }
}

variable "ami_id" {
  description = "AMI for the nodes; null uses the module's default (latest Debian 12 from its public SSM parameter)."
  type        = string
  default     = null
}

variable "ssh_user" {
  description = "Login user of the AMI (\"admin\" for Debian)."
  type        = string
  default     = "admin"
}

variable "key_name" {
  description = "Existing EC2 key pair to install on the nodes; its private key stays on your machine. sparkboot reaches the workers through a forwarded TCP channel on the master, so the key never has to be copied to the master."
  type        = string
  default     = null
}

variable "master_instance_type" {
  description = "Instance type of the master."
  type        = string
  default     = "m7i.large"
}

variable "worker_instance_types" {
  description = "Instance types the workers may use."
  type        = list(string)
  default     = ["m7i.xlarge", "m6i.xlarge", "m6a.xlarge", "m5.xlarge"]
}

variable "worker_desired_capacity" {
  description = "Number of workers."
  type        = number
  default     = 2
}

variable "worker_on_demand_base_capacity" {
  description = "How many of the workers run on-demand; the others are spot."
  type        = number
  default     = 1
}

variable "extra_egress_rules" {
  description = "Extra outbound rules for the nodes (see the module's extra_egress_rules)."
  type = list(object({
    description = string
    protocol    = string
    from_port   = optional(number)
    to_port     = optional(number)
    cidr_blocks = list(string)
  }))
  default = []
}

variable "node_role_policy_arns" {
  description = "Extra managed policies for the nodes' role (see the module's node_role_policy_arns); AmazonSSMManagedInstanceCore by default, so Session Manager reaches the private workers as well."
  type        = map(string)
  default = {
    ssm = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects. On in the example, which is meant to be thrown away."
  type        = bool
  default     = true
}

# --- Provider settings: the defaults are real AWS; tests override them to use moto. ---

variable "aws_endpoint" {
  description = "Endpoint URL for every AWS service the example uses (e.g. a local moto server, \"http://127.0.0.1:5000\"). null uses the real AWS endpoints."
  type        = string
  default     = null
}

variable "skip_credentials_validation" {
  description = "Skip the provider's STS credential check (for an emulator)."
  type        = bool
  default     = false
}

variable "skip_metadata_api_check" {
  description = "Skip the provider's EC2 instance metadata lookup for credentials (for an emulator)."
  type        = bool
  default     = false
}

variable "skip_requesting_account_id" {
  description = "Skip looking up the account ID (for an emulator)."
  type        = bool
  default     = false
}

variable "s3_use_path_style" {
  description = "Address S3 buckets by path instead of virtual host (for an emulator on an IP address)."
  type        = bool
  default     = false
}
