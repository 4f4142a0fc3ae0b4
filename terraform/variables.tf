# Inputs of the sparkboot cluster module. Every variable is typed and described; the ones a
# caller can get wrong are validated here, before any API call. Checks that involve two
# variables (worker min <= desired <= max) are lifecycle preconditions on the resources, because
# Terraform 1.5 validation blocks may only refer to their own variable.

# --------------------------------------------------------------------------------------------
# Identity and placement
# --------------------------------------------------------------------------------------------

variable "cluster_name" {
  description = "Name of the cluster: prefixes every resource name and is the value of the `sparkboot:cluster` tag that sparkboot uses to find the nodes. 2 to 24 characters: lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen (it is also used in the S3 bucket name and the DNS zone)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.cluster_name)) && !strcontains(var.cluster_name, "--")
    error_message = "cluster_name must be 2-24 characters of lower-case letters, digits and single hyphens, start with a letter and end with a letter or digit (for example \"spark-prod\")."
  }
}

variable "vpc_id" {
  description = "ID of the existing VPC the cluster goes into. It must have DNS support and DNS hostnames enabled, since the module attaches a private Route53 zone to it."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC ID such as \"vpc-0123456789abcdef0\"."
  }
}

variable "subnet_ids" {
  description = "IDs of existing subnets of vpc_id. Workers are spread over all of them (use subnets in several availability zones so spot capacity can be found); the master goes into master_subnet_id, or the first of these."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must list at least one subnet."
  }

  validation {
    condition     = alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "Every entry of subnet_ids must be a subnet ID such as \"subnet-0123456789abcdef0\"."
  }

  validation {
    condition     = length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "subnet_ids must not list the same subnet twice."
  }
}

variable "master_subnet_id" {
  description = "Subnet for the master. null (the default) uses the first entry of subnet_ids."
  type        = string
  default     = null

  validation {
    condition     = var.master_subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.master_subnet_id))
    error_message = "master_subnet_id must be null or a subnet ID such as \"subnet-0123456789abcdef0\"."
  }
}

variable "associate_public_ip_address" {
  description = "Give the master and the workers a public IPv4 address. Off by default: nodes stay private and are reached from inside the VPC (a bastion, VPN or the master as an SSH jump host). Turn it on only in a public subnet, and keep admin_cidrs tight: public IPv4 addresses are billed per hour."
  type        = bool
  default     = false
}

# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------

variable "admin_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the nodes over SSH (port 22), and the Spark UIs when expose_spark_ui is on: the addresses sparkboot and the operators connect from. Required, with no default; 0.0.0.0/0 (or any /0) is refused; at most 14 entries."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0 && length(var.admin_cidrs) <= 14
    error_message = "admin_cidrs must list 1 to 14 CIDR blocks (for example your office or bastion address as \"203.0.113.10/32\"); 14 keeps SSH plus the three Spark UIs within the default quota of 60 inbound rules per security group."
  }

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrnetmask(c)) && can(cidrsubnet(c, 0, 0)) && try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Every entry of admin_cidrs must be an IPv4 CIDR block written with its network address, such as \"203.0.113.0/24\" or \"198.51.100.7/32\"."
  }

  validation {
    condition     = alltrue([for c in var.admin_cidrs : !endswith(c, "/0")])
    error_message = "admin_cidrs must not contain 0.0.0.0/0: SSH would be open to the whole internet. List the addresses sparkboot connects from."
  }
}

variable "expose_spark_ui" {
  description = "Open the Spark web UIs (master 8080, worker 8081, application 4040) to admin_cidrs. Nodes always reach each other's UIs through the cluster's self-referencing rule."
  type        = bool
  default     = false
}

variable "key_name" {
  description = "Name of an existing EC2 key pair to install for ssh_user on every node. null (the default) installs none: then supply access another way (for example EC2 Instance Connect or a key baked into the AMI). The module never creates or handles private keys."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || try(length(var.key_name) > 0 && length(var.key_name) <= 255, false)
    error_message = "key_name must be null or the name of an existing EC2 key pair (1-255 characters)."
  }
}

variable "ssh_user" {
  description = "Login user of the AMI, reported in the outputs for sparkboot: \"admin\" for Debian (the default AMI), \"ubuntu\" for Ubuntu, \"ec2-user\" for Amazon Linux."
  type        = string
  default     = "admin"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user))
    error_message = "ssh_user must be a valid login name (lower-case letters, digits, '_' and '-', at most 32 characters)."
  }
}

# --------------------------------------------------------------------------------------------
# Machine image and instances
# --------------------------------------------------------------------------------------------

variable "ami_id" {
  description = "AMI for every node. null (the default) resolves ami_ssm_parameter. The master ignores later AMI changes (replace it explicitly); new workers use the new AMI."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be null or an AMI ID such as \"ami-0123456789abcdef0\"."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter that names the AMI when ami_id is null. The default is Debian 12 (bookworm) for x86-64, whose login user is \"admin\"; every instance type must match the AMI's architecture."
  type        = string
  default     = "/aws/service/debian/release/bookworm/latest/amd64"

  validation {
    condition     = startswith(var.ami_ssm_parameter, "/")
    error_message = "ami_ssm_parameter must be an SSM parameter path starting with \"/\"."
  }
}

variable "master_instance_type" {
  description = "Instance type of the master (on-demand). Current-generation types only: the module turns on EBS optimisation."
  type        = string
  default     = "m7i.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.master_instance_type))
    error_message = "master_instance_type must look like \"m7i.large\"."
  }

  validation {
    condition     = !can(regex("^(t1|t2|m1|m2|m3|c1|c3|cc2|cr1|g2|hi1|hs1|i2|r3)\\.", var.master_instance_type))
    error_message = "master_instance_type is a previous-generation type (t1, t2, m1-m3, c1, c3, r3, i2, ...); use a current generation such as t3, m7i or m6a."
  }
}

variable "worker_instance_types" {
  description = "Instance types the spot workers may use, in order of preference. List several of similar size (and the AMI's architecture) so the price-capacity-optimized strategy has pools to choose from."
  type        = list(string)
  default     = ["m7i.xlarge", "m6i.xlarge", "m6a.xlarge", "m5.xlarge", "m5a.xlarge"]

  validation {
    condition     = length(var.worker_instance_types) > 0 && length(var.worker_instance_types) <= 40
    error_message = "worker_instance_types must list between 1 and 40 instance types (several are better for spot)."
  }

  validation {
    condition     = alltrue([for t in var.worker_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "Every entry of worker_instance_types must look like \"m7i.xlarge\"."
  }

  validation {
    condition     = alltrue([for t in var.worker_instance_types : !can(regex("^(t1|t2|m1|m2|m3|c1|c3|cc2|cr1|g2|hi1|hs1|i2|r3)\\.", t))])
    error_message = "worker_instance_types contains a previous-generation type (t1, t2, m1-m3, c1, c3, r3, i2, ...); use current generations such as m7i, m6a or t3."
  }

  validation {
    condition     = length(distinct(var.worker_instance_types)) == length(var.worker_instance_types)
    error_message = "worker_instance_types must not list the same type twice."
  }
}

variable "worker_min_size" {
  description = "Minimum number of workers in the Auto Scaling group."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_min_size >= 0 && var.worker_min_size <= 1000 && floor(var.worker_min_size) == var.worker_min_size
    error_message = "worker_min_size must be a whole number from 0 to 1000."
  }
}

variable "worker_max_size" {
  description = "Maximum number of workers in the Auto Scaling group. Must be at least worker_desired_capacity."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_max_size >= 1 && var.worker_max_size <= 1000 && floor(var.worker_max_size) == var.worker_max_size
    error_message = "worker_max_size must be a whole number from 1 to 1000."
  }
}

variable "worker_desired_capacity" {
  description = "Number of workers to run. Must lie between worker_min_size and worker_max_size. Re-run `sparkboot converge` after changing it (or after any scale event)."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_desired_capacity >= 0 && var.worker_desired_capacity <= 1000 && floor(var.worker_desired_capacity) == var.worker_desired_capacity
    error_message = "worker_desired_capacity must be a whole number from 0 to 1000."
  }
}

variable "root_volume_size" {
  description = "Size in GiB of each node's encrypted root volume (Spark, its jars and shuffle spill live there)."
  type        = number
  default     = 40

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "root_volume_size must be a whole number of GiB from 8 to 16384."
  }
}

variable "root_volume_type" {
  description = "EBS volume type of each node's root volume: gp3 (the default) or gp2. Provisioned-IOPS types are not offered, since the module sets no IOPS."
  type        = string
  default     = "gp3"

  validation {
    condition     = contains(["gp3", "gp2"], var.root_volume_type)
    error_message = "root_volume_type must be one of gp3, gp2."
  }
}

variable "ebs_kms_key_arn" {
  description = "ARN of a customer-managed KMS key for the root volumes. null (the default) uses the AWS-managed aws/ebs key. A customer key must allow the Auto Scaling service-linked role to use it, or spot workers fail to launch."
  type        = string
  default     = null

  validation {
    condition     = var.ebs_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.ebs_kms_key_arn))
    error_message = "ebs_kms_key_arn must be null or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "detailed_monitoring" {
  description = "Turn on EC2 detailed (1-minute) CloudWatch monitoring for every node. Off by default because it is billed per instance."
  type        = bool
  default     = false
}

# --------------------------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------------------------

variable "dns_zone_name" {
  description = "Name of the private Route53 zone created for the cluster and attached to vpc_id. null (the default) uses \"<cluster_name>.sparkboot.internal\"."
  type        = string
  default     = null

  validation {
    condition     = var.dns_zone_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.dns_zone_name))
    error_message = "dns_zone_name must be null or a lower-case DNS name without a trailing dot, such as \"spark.example.internal\"."
  }
}

variable "master_dns_label" {
  description = "Label of the master's A record inside the private zone: the master answers at \"<master_dns_label>.<zone>\"."
  type        = string
  default     = "master"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.master_dns_label))
    error_message = "master_dns_label must be a single lower-case DNS label such as \"master\"."
  }
}

# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the cluster's S3 bucket. null (the default) lets AWS generate a unique name starting with \"<cluster_name>-\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be null or a valid S3 bucket name: 3-63 lower-case letters, digits, '.' and '-'."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket even when it still holds objects (and all their versions). Off by default so cluster data is not lost by accident."
  type        = bool
  default     = false
}

variable "s3_kms_key_arn" {
  description = "ARN of a customer-managed KMS key for the bucket's default encryption. null (the default) uses SSE-KMS with the AWS-managed aws/s3 key, which costs nothing extra; with a customer key the node role is also granted kms:Decrypt and kms:GenerateDataKey on that key, through S3 only."
  type        = string
  default     = null

  validation {
    condition     = var.s3_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.s3_kms_key_arn))
    error_message = "s3_kms_key_arn must be null or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed from the versioned bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of at least 1."
  }
}

# --------------------------------------------------------------------------------------------
# Tags
# --------------------------------------------------------------------------------------------

variable "tags" {
  description = "Extra tags for every resource the module creates. The module's own `sparkboot:cluster` and `sparkboot:role` tags win over these."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(lower(k), "aws:")])
    error_message = "tags must not use the reserved \"aws:\" key prefix."
  }
}
