# Inputs of the sparkboot cluster module. Every variable is typed and described; the ones a
# caller can get wrong are validated here, before any API call. Checks that involve two
# variables (worker min <= desired <= max) are lifecycle preconditions on the resources, because
# Terraform 1.5 validation blocks may only refer to their own variable.

# --------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------

variable "create" {
  description = "Create the module's resources. false makes every resource and data source count 0 (for example to switch a cluster off per environment); the outputs then evaluate to null."
  type        = bool
  default     = true
}

variable "enable_watch" {
  description = "Create the spot-churn plumbing for `sparkboot watch`: launch and terminate lifecycle hooks on the workers' group, EventBridge rules for the group's lifecycle actions, spot interruption warnings and rebalance recommendations, one encrypted SQS queue (with a dead-letter queue) they deliver to, and a managed IAM policy for whoever runs the watcher. false creates none of it."
  type        = bool
  default     = true
}

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
  description = "IDs of existing subnets of vpc_id for the workers, which are spread over all of them (use subnets in several availability zones so spot capacity can be found). The master goes into master_subnet_id, or else the first of these."
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
  description = "Subnet for the master: any subnet of vpc_id, for example a public subnet while the workers' subnet_ids are private (see examples/private-workers). null (the default) uses the first entry of subnet_ids."
  type        = string
  default     = null

  validation {
    condition     = var.master_subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", var.master_subnet_id))
    error_message = "master_subnet_id must be null or a subnet ID such as \"subnet-0123456789abcdef0\"."
  }
}

variable "master_associate_public_ip_address" {
  description = "Give the master a public IPv4 address. null (the default) falls back to the deprecated associate_public_ip_address, and then to false. Turn it on only in a public subnet, and keep admin_cidrs tight: public IPv4 addresses are billed per hour. With a public master and private workers, sparkboot reaches the workers through the master (`[aws] jump_host = \"master\"`)."
  type        = bool
  default     = null
}

variable "worker_associate_public_ip_address" {
  description = "Give every worker a public IPv4 address. null (the default) falls back to the deprecated associate_public_ip_address, and then to false: workers stay private and are reached from inside the VPC (a bastion, VPN or the master as an SSH jump host), and need a NAT gateway or VPC endpoints for their downloads."
  type        = bool
  default     = null
}

variable "associate_public_ip_address" {
  description = "Deprecated: use master_associate_public_ip_address and worker_associate_public_ip_address. When set (true or false), it is the value of whichever of the two is null, and plans show a warning. null (the default) means false."
  type        = bool
  default     = null
}

# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------

variable "admin_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the nodes over SSH (port 22), and the Spark UIs when expose_spark_ui is on: the addresses sparkboot and the operators connect from. Required, with no default; 0.0.0.0/0 (or any /0) is refused. It may be empty (`[]`) only when admin_security_group_ids names the sources instead; the two together hold 1 to 14 entries."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) <= 14
    error_message = "admin_cidrs must list at most 14 CIDR blocks (for example your office or bastion address as \"203.0.113.10/32\"); 14 sources keep SSH plus the three Spark UIs within the default quota of 60 inbound rules per security group."
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

variable "admin_security_group_ids" {
  description = "Security groups (of vpc_id, or of a peered VPC) whose members may reach the nodes over SSH, and the Spark UIs when expose_spark_ui is on: for example a bastion's or a CI runner's group. Combined with admin_cidrs; the two together hold 1 to 14 entries."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.admin_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", g))])
    error_message = "Every entry of admin_security_group_ids must be a security group ID such as \"sg-0123456789abcdef0\"."
  }

  validation {
    condition     = length(distinct(var.admin_security_group_ids)) == length(var.admin_security_group_ids)
    error_message = "admin_security_group_ids must not list the same group twice."
  }
}

variable "master_security_group_ids" {
  description = "Extra security groups to attach to the master, besides the cluster's own group (for example a site-wide monitoring or bastion-access group). At most 4: the default quota is 5 groups per network interface."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.master_security_group_ids) <= 4 && alltrue([for g in var.master_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", g))])
    error_message = "master_security_group_ids must list at most 4 security group IDs such as \"sg-0123456789abcdef0\" (the cluster's own group is the fifth)."
  }
}

variable "worker_security_group_ids" {
  description = "Extra security groups to attach to every worker, besides the cluster's own group. At most 4: the default quota is 5 groups per network interface."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.worker_security_group_ids) <= 4 && alltrue([for g in var.worker_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", g))])
    error_message = "worker_security_group_ids must list at most 4 security group IDs such as \"sg-0123456789abcdef0\" (the cluster's own group is the fifth)."
  }
}

variable "extra_egress_rules" {
  description = "Outbound rules added to the cluster's security group, besides HTTPS and HTTP to anywhere and everything inside the cluster: for example a site proxy, a package mirror or a metrics endpoint. protocol is \"tcp\", \"udp\", \"icmp\" or \"-1\" (all); tcp and udp need from_port and to_port (0-65535), icmp takes the ICMP type and code as from_port and to_port (-1 for any), and -1 takes no ports. Each CIDR block of a rule becomes one security group rule."
  type = list(object({
    description = string
    protocol    = string
    from_port   = optional(number)
    to_port     = optional(number)
    cidr_blocks = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.extra_egress_rules : contains(["tcp", "udp", "icmp", "-1"], r.protocol)])
    error_message = "Every extra_egress_rules entry needs protocol \"tcp\", \"udp\", \"icmp\" or \"-1\"."
  }

  validation {
    condition = alltrue([for r in var.extra_egress_rules : (
      contains(["tcp", "udp"], r.protocol) ? (r.from_port != null && r.to_port != null && try(r.from_port >= 0 && r.from_port <= r.to_port && r.to_port <= 65535 && floor(r.from_port) == r.from_port && floor(r.to_port) == r.to_port, false)) :
      r.protocol == "icmp" ? (r.from_port != null && r.to_port != null && try(r.from_port >= -1 && r.from_port <= 255 && r.to_port >= -1 && r.to_port <= 255, false)) :
      (r.from_port == null && r.to_port == null)
    )])
    error_message = "extra_egress_rules ports: tcp and udp need whole from_port <= to_port within 0-65535, icmp needs an ICMP type and code (-1 to 255) as from_port and to_port, and protocol \"-1\" takes no ports."
  }

  validation {
    condition     = alltrue([for r in var.extra_egress_rules : length(r.cidr_blocks) > 0 && alltrue([for c in r.cidr_blocks : can(cidrnetmask(c)) && try(cidrsubnet(c, 0, 0) == c, false)])])
    error_message = "Every extra_egress_rules entry needs at least one IPv4 CIDR block, each written with its network address, such as \"10.0.0.0/8\"."
  }

  validation {
    condition     = alltrue([for r in var.extra_egress_rules : can(regex("^[A-Za-z0-9. _:/()#,@\\[\\]+=&;{}!$*-]{1,255}$", r.description))])
    error_message = "Every extra_egress_rules entry needs a description of 1-255 characters from the set security groups accept (letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*)."
  }
}

variable "expose_spark_ui" {
  description = "Open the Spark web UIs (master 8080, worker 8081, application 4040) to admin_cidrs and admin_security_group_ids. Nodes always reach each other's UIs through the cluster's self-referencing rule."
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

variable "worker_on_demand_base_capacity" {
  description = "Number of workers that run on-demand before any spot worker is added (the group's on_demand_base_capacity). 0 (the default) keeps every worker on spot; a small base keeps some executors through a spot capacity drought."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_on_demand_base_capacity >= 0 && var.worker_on_demand_base_capacity <= 1000 && floor(var.worker_on_demand_base_capacity) == var.worker_on_demand_base_capacity
    error_message = "worker_on_demand_base_capacity must be a whole number from 0 to 1000."
  }
}

variable "worker_on_demand_percentage_above_base_capacity" {
  description = "Percentage of the workers above worker_on_demand_base_capacity that run on-demand (the group's on_demand_percentage_above_base_capacity); the rest are spot. 0 (the default) is all spot, 100 all on-demand."
  type        = number
  default     = 0

  validation {
    condition     = var.worker_on_demand_percentage_above_base_capacity >= 0 && var.worker_on_demand_percentage_above_base_capacity <= 100 && floor(var.worker_on_demand_percentage_above_base_capacity) == var.worker_on_demand_percentage_above_base_capacity
    error_message = "worker_on_demand_percentage_above_base_capacity must be a whole number from 0 to 100."
  }
}

variable "worker_wait_for_capacity_timeout" {
  description = "How long `terraform apply` waits for the workers' group to have worker_desired_capacity healthy InService instances (the group's wait_for_capacity_timeout), for example \"10m\"; \"0\" never waits. null (the default) waits 10 minutes without the watch plumbing, and with it the launch hook's heartbeat timeout plus 5 minutes, since a new worker stays in Pending:Wait until the watcher completes its launch action or the heartbeat times out."
  type        = string
  default     = null

  validation {
    condition     = var.worker_wait_for_capacity_timeout == null || can(regex("^(0|([0-9]+h)?([0-9]+m)?([0-9]+s)?)$", var.worker_wait_for_capacity_timeout))
    error_message = "worker_wait_for_capacity_timeout must be null, \"0\" or a duration such as \"10m\", \"1h30m\" or \"900s\"."
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
# Spot churn (enable_watch)
# --------------------------------------------------------------------------------------------

variable "launch_hook_heartbeat_timeout" {
  description = "Seconds a new worker waits in Pending:Wait for `sparkboot watch` to configure it and complete its launch lifecycle action (the watcher may extend it with heartbeats). When it runs out the worker goes InService anyway (default result CONTINUE), so a watcher that is down delays nothing beyond this. 30 to 7200."
  type        = number
  default     = 600

  validation {
    condition     = var.launch_hook_heartbeat_timeout >= 30 && var.launch_hook_heartbeat_timeout <= 7200 && floor(var.launch_hook_heartbeat_timeout) == var.launch_hook_heartbeat_timeout
    error_message = "launch_hook_heartbeat_timeout must be a whole number of seconds from 30 to 7200 (the Auto Scaling limits)."
  }
}

variable "terminate_hook_heartbeat_timeout" {
  description = "Seconds a terminating worker waits in Terminating:Wait for `sparkboot watch` to decommission it from Spark and complete its terminate lifecycle action. When it runs out the termination goes ahead (default result CONTINUE). A spot interruption gives 2 minutes in all, so the default is 180. 30 to 7200."
  type        = number
  default     = 180

  validation {
    condition     = var.terminate_hook_heartbeat_timeout >= 30 && var.terminate_hook_heartbeat_timeout <= 7200 && floor(var.terminate_hook_heartbeat_timeout) == var.terminate_hook_heartbeat_timeout
    error_message = "terminate_hook_heartbeat_timeout must be a whole number of seconds from 30 to 7200 (the Auto Scaling limits)."
  }
}

# --------------------------------------------------------------------------------------------
# DNS
# --------------------------------------------------------------------------------------------

variable "dns_zone_name" {
  description = "Name of the private Route53 zone created for the cluster and attached to vpc_id. null (the default) uses `<cluster_name>.sparkboot.internal`."
  type        = string
  default     = null

  validation {
    condition     = var.dns_zone_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.dns_zone_name))
    error_message = "dns_zone_name must be null or a lower-case DNS name without a trailing dot, such as \"spark.example.internal\"."
  }
}

variable "master_dns_label" {
  description = "Label of the master's A record inside the private zone: the master answers at `<master_dns_label>.<zone>`."
  type        = string
  default     = "master"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.master_dns_label))
    error_message = "master_dns_label must be a single lower-case DNS label such as \"master\"."
  }
}

# --------------------------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------------------------

variable "node_role_permissions_boundary" {
  description = "ARN of a managed policy to set as the permissions boundary of the nodes' IAM role, where the account requires one for every role. null (the default) sets none."
  type        = string
  default     = null

  validation {
    condition     = var.node_role_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.node_role_permissions_boundary))
    error_message = "node_role_permissions_boundary must be null or an IAM policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)."
  }
}

variable "node_role_policy_arns" {
  description = "Extra managed policies to attach to the nodes' IAM role, by a name of your choice (the map's keys are only Terraform keys, so the ARNs may come from resources created in the same apply), for example `{ ssm = \"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore\" }`. The module's own policy (the cluster bucket only) stays."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.node_role_policy_arns) : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", arn))])
    error_message = "Every value of node_role_policy_arns must be an IAM policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)."
  }
}

# --------------------------------------------------------------------------------------------
# S3
# --------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the cluster's S3 bucket. null (the default) lets AWS generate a unique name starting with `<cluster_name>-`."
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
