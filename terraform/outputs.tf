# What sparkboot (and an operator) needs after `terraform apply`. Workers come and go with the
# Auto Scaling group, so their addresses are not outputs: sparkboot's `terraform:DIR` inventory
# reads these outputs, then lists the group's running instances through the AWS API.
# With create = false every output is null; with enable_watch = false the watch outputs are.

output "cluster_name" {
  description = "Name of the cluster, also the value of every node's `sparkboot:cluster` tag."
  value       = var.cluster_name
}

output "region" {
  description = "AWS region the cluster runs in."
  value       = local.region
}

output "master_instance_id" {
  description = "EC2 instance ID of the master."
  value       = one(aws_instance.master[*].id)
}

output "master_private_ip" {
  description = "Private IPv4 address of the master."
  value       = one(aws_instance.master[*].private_ip)
}

output "master_public_ip" {
  description = "Public IPv4 address of the master, or null when it has none (master_associate_public_ip_address off)."
  value       = local.master_public_ip ? one(aws_instance.master[*].public_ip) : null
}

output "master_dns_name" {
  description = "FQDN of the master's A record in the cluster's private Route53 zone (resolvable inside the VPC)."
  value       = one(aws_route53_record.master[*].fqdn)
}

output "worker_asg_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = one(aws_autoscaling_group.workers[*].name)
}

output "worker_asg_arn" {
  description = "ARN of the workers' Auto Scaling group."
  value       = one(aws_autoscaling_group.workers[*].arn)
}

output "worker_launch_template_id" {
  description = "ID of the workers' launch template."
  value       = one(aws_launch_template.worker[*].id)
}

output "bucket_name" {
  description = "Name of the cluster's S3 bucket."
  value       = one(aws_s3_bucket.cluster[*].id)
}

output "bucket_arn" {
  description = "ARN of the cluster's S3 bucket."
  value       = one(aws_s3_bucket.cluster[*].arn)
}

output "ssh_user" {
  description = "Login user sparkboot connects as."
  value       = var.ssh_user
}

output "security_group_id" {
  description = "ID of the security group shared by every node."
  value       = one(aws_security_group.cluster[*].id)
}

output "node_role_name" {
  description = "Name of the nodes' IAM role (attach further policies to it, or use node_role_policy_arns, if jobs need more than the cluster bucket)."
  value       = one(aws_iam_role.node[*].name)
}

output "node_role_arn" {
  description = "ARN of the nodes' IAM role."
  value       = one(aws_iam_role.node[*].arn)
}

output "dns_zone_id" {
  description = "ID of the cluster's private Route53 zone."
  value       = one(aws_route53_zone.cluster[*].zone_id)
}

output "dns_zone_name" {
  description = "Name of the cluster's private Route53 zone."
  value       = one(aws_route53_zone.cluster[*].name)
}

output "node_tags" {
  description = "Tag keys and values that mark the cluster's nodes, by role, for discovery through the EC2 API."
  value = {
    master = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "master" }
    worker = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "worker" }
  }
}

output "watch_queue_url" {
  description = "URL of the SQS queue that `sparkboot watch` reads (lifecycle actions, spot interruption warnings, rebalance recommendations), or null without enable_watch."
  value       = one(aws_sqs_queue.watch[*].url)
}

output "watch_queue_arn" {
  description = "ARN of the watch queue, or null without enable_watch."
  value       = one(aws_sqs_queue.watch[*].arn)
}

output "watch_dlq_url" {
  description = "URL of the watch queue's dead-letter queue (messages received 5 times without being deleted, and events EventBridge could not deliver), or null without enable_watch."
  value       = one(aws_sqs_queue.watch_dlq[*].url)
}

output "launch_hook_name" {
  description = "Name of the workers' launch lifecycle hook, or null without enable_watch."
  value       = one(aws_autoscaling_lifecycle_hook.launch[*].name)
}

output "terminate_hook_name" {
  description = "Name of the workers' terminate lifecycle hook, or null without enable_watch."
  value       = one(aws_autoscaling_lifecycle_hook.terminate[*].name)
}

output "watch_event_rule_arns" {
  description = "ARNs of the EventBridge rules that feed the watch queue, by purpose (lifecycle, spot-interruption, rebalance); empty without enable_watch."
  value       = { for k, rule in aws_cloudwatch_event_rule.watch : k => rule.arn }
}

output "watch_policy_arn" {
  description = "ARN of the managed IAM policy for whoever runs `sparkboot watch`: attach it to that role or user. null without enable_watch."
  value       = one(aws_iam_policy.watch[*].arn)
}

output "watch_policy_json" {
  description = "The watch policy's document (JSON), for review or for use in a permission set; null without enable_watch."
  value       = one(data.aws_iam_policy_document.watch[*].json)
}

output "sparkboot_inventory" {
  description = "Everything `sparkboot converge --inventory terraform:DIR` and `sparkboot watch` need, in one object (schema 1): where the master is, how to find the workers, how to log in, and the watch queue and hooks (null without enable_watch). Keys are only ever added within schema 1. null with create = false."
  value = local.create ? {
    schema       = 1
    cluster_name = var.cluster_name
    region       = local.region
    ssh_user     = var.ssh_user
    master = {
      instance_id = aws_instance.master[0].id
      private_ip  = aws_instance.master[0].private_ip
      public_ip   = local.master_public_ip ? aws_instance.master[0].public_ip : null
      dns_name    = aws_route53_record.master[0].fqdn
    }
    workers = {
      asg_name = aws_autoscaling_group.workers[0].name
      tags     = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "worker" }
    }
    bucket         = aws_s3_bucket.cluster[0].id
    queue_url      = one(aws_sqs_queue.watch[*].url)
    launch_hook    = one(aws_autoscaling_lifecycle_hook.launch[*].name)
    terminate_hook = one(aws_autoscaling_lifecycle_hook.terminate[*].name)
  } : null
}
