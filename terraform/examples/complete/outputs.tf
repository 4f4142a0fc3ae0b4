# The module's outputs, passed through unchanged so that `sparkboot converge --inventory
# terraform:DIR` works on this directory exactly as on a root module that calls the module.

output "cluster_name" {
  description = "Name of the cluster."
  value       = module.spark.cluster_name
}

output "region" {
  description = "AWS region of the cluster."
  value       = module.spark.region
}

output "master_instance_id" {
  description = "EC2 instance ID of the master."
  value       = module.spark.master_instance_id
}

output "master_private_ip" {
  description = "Private IPv4 address of the master."
  value       = module.spark.master_private_ip
}

output "master_public_ip" {
  description = "Public IPv4 address of the master, if any."
  value       = module.spark.master_public_ip
}

output "master_dns_name" {
  description = "FQDN of the master in the private zone."
  value       = module.spark.master_dns_name
}

output "worker_asg_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = module.spark.worker_asg_name
}

output "bucket_name" {
  description = "Name of the cluster's S3 bucket."
  value       = module.spark.bucket_name
}

output "ssh_user" {
  description = "Login user sparkboot connects as."
  value       = module.spark.ssh_user
}

output "security_group_id" {
  description = "ID of the nodes' security group."
  value       = module.spark.security_group_id
}

output "vpc_id" {
  description = "ID of the example's VPC."
  value       = aws_vpc.this.id
}

output "subnet_ids" {
  description = "IDs of the example's subnets."
  value       = aws_subnet.this[*].id
}

output "sparkboot_inventory" {
  description = "The module's inventory object for `sparkboot converge --inventory terraform:DIR`."
  value       = module.spark.sparkboot_inventory
}

output "watch_queue_url" {
  description = "URL of the SQS queue `sparkboot watch` reads."
  value       = module.spark.watch_queue_url
}

output "watch_policy_arn" {
  description = "Managed IAM policy to attach to whoever runs `sparkboot watch`."
  value       = module.spark.watch_policy_arn
}

output "watch_dlq_url" {
  description = "URL of the dead-letter queue: events `sparkboot watch` could not handle."
  value       = module.spark.watch_dlq_url
}
