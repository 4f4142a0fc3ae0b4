# What sparkboot (and an operator) needs after `terraform apply`. Workers come and go with the
# Auto Scaling group, so their addresses are not outputs: sparkboot's `terraform:DIR` inventory
# reads these outputs, then lists the group's running instances through the AWS API.

output "cluster_name" {
  description = "Name of the cluster, also the value of every node's `sparkboot:cluster` tag."
  value       = var.cluster_name
}

output "region" {
  description = "AWS region the cluster runs in."
  value       = data.aws_region.current.name
}

output "master_instance_id" {
  description = "EC2 instance ID of the master."
  value       = aws_instance.master.id
}

output "master_private_ip" {
  description = "Private IPv4 address of the master."
  value       = aws_instance.master.private_ip
}

output "master_public_ip" {
  description = "Public IPv4 address of the master, or null when associate_public_ip_address is off."
  value       = var.associate_public_ip_address ? aws_instance.master.public_ip : null
}

output "master_dns_name" {
  description = "FQDN of the master's A record in the cluster's private Route53 zone (resolvable inside the VPC)."
  value       = aws_route53_record.master.fqdn
}

output "worker_asg_name" {
  description = "Name of the workers' Auto Scaling group."
  value       = aws_autoscaling_group.workers.name
}

output "worker_launch_template_id" {
  description = "ID of the workers' launch template."
  value       = aws_launch_template.worker.id
}

output "bucket_name" {
  description = "Name of the cluster's S3 bucket."
  value       = aws_s3_bucket.cluster.id
}

output "bucket_arn" {
  description = "ARN of the cluster's S3 bucket."
  value       = aws_s3_bucket.cluster.arn
}

output "ssh_user" {
  description = "Login user sparkboot connects as."
  value       = var.ssh_user
}

output "security_group_id" {
  description = "ID of the security group shared by every node."
  value       = aws_security_group.cluster.id
}

output "node_role_name" {
  description = "Name of the nodes' IAM role (attach further policies to it if jobs need more than the cluster bucket)."
  value       = aws_iam_role.node.name
}

output "dns_zone_id" {
  description = "ID of the cluster's private Route53 zone."
  value       = aws_route53_zone.cluster.zone_id
}

output "dns_zone_name" {
  description = "Name of the cluster's private Route53 zone."
  value       = aws_route53_zone.cluster.name
}

output "node_tags" {
  description = "Tag keys and values that mark the cluster's nodes, by role, for discovery through the EC2 API."
  value = {
    master = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "master" }
    worker = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "worker" }
  }
}

output "sparkboot_inventory" {
  description = "Everything `sparkboot converge --inventory terraform:DIR` needs, in one object (schema 1): where the master is, how to find the workers, and how to log in."
  value = {
    schema       = 1
    cluster_name = var.cluster_name
    region       = data.aws_region.current.name
    ssh_user     = var.ssh_user
    master = {
      instance_id = aws_instance.master.id
      private_ip  = aws_instance.master.private_ip
      public_ip   = var.associate_public_ip_address ? aws_instance.master.public_ip : null
      dns_name    = aws_route53_record.master.fqdn
    }
    workers = {
      asg_name = aws_autoscaling_group.workers.name
      tags     = { (local.cluster_tag_key) = var.cluster_name, (local.role_tag_key) = "worker" }
    }
    bucket = aws_s3_bucket.cluster.id
  }
}
