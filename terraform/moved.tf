# Version 1 of the module had no `create` switch, so these resources had no count. These blocks
# move their state to the [0] instances: upgrading an existing cluster replaces nothing.

moved {
  from = aws_route53_zone.cluster
  to   = aws_route53_zone.cluster[0]
}

moved {
  from = aws_route53_record.master
  to   = aws_route53_record.master[0]
}

moved {
  from = aws_iam_role.node
  to   = aws_iam_role.node[0]
}

moved {
  from = aws_iam_role_policy.node
  to   = aws_iam_role_policy.node[0]
}

moved {
  from = aws_iam_instance_profile.node
  to   = aws_iam_instance_profile.node[0]
}

moved {
  from = aws_instance.master
  to   = aws_instance.master[0]
}

moved {
  from = aws_s3_bucket.cluster
  to   = aws_s3_bucket.cluster[0]
}

moved {
  from = aws_s3_bucket_public_access_block.cluster
  to   = aws_s3_bucket_public_access_block.cluster[0]
}

moved {
  from = aws_s3_bucket_ownership_controls.cluster
  to   = aws_s3_bucket_ownership_controls.cluster[0]
}

moved {
  from = aws_s3_bucket_server_side_encryption_configuration.cluster
  to   = aws_s3_bucket_server_side_encryption_configuration.cluster[0]
}

moved {
  from = aws_s3_bucket_versioning.cluster
  to   = aws_s3_bucket_versioning.cluster[0]
}

moved {
  from = aws_s3_bucket_lifecycle_configuration.cluster
  to   = aws_s3_bucket_lifecycle_configuration.cluster[0]
}

moved {
  from = aws_s3_bucket_policy.cluster
  to   = aws_s3_bucket_policy.cluster[0]
}

moved {
  from = aws_security_group.cluster
  to   = aws_security_group.cluster[0]
}

moved {
  from = aws_vpc_security_group_ingress_rule.intra_cluster
  to   = aws_vpc_security_group_ingress_rule.intra_cluster[0]
}

moved {
  from = aws_vpc_security_group_egress_rule.intra_cluster
  to   = aws_vpc_security_group_egress_rule.intra_cluster[0]
}

moved {
  from = aws_vpc_security_group_egress_rule.https
  to   = aws_vpc_security_group_egress_rule.https[0]
}

moved {
  from = aws_vpc_security_group_egress_rule.http
  to   = aws_vpc_security_group_egress_rule.http[0]
}

moved {
  from = aws_launch_template.worker
  to   = aws_launch_template.worker[0]
}

moved {
  from = aws_autoscaling_group.workers
  to   = aws_autoscaling_group.workers[0]
}
