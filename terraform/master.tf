# The master: one on-demand instance (losing it to a spot interruption would stop every job).
# IMDSv2 only, hop limit 1 (no container on the node can reach the metadata service), encrypted
# root volume, the node instance profile, and no public IP unless associate_public_ip_address.

resource "aws_instance" "master" {
  #checkov:skip=CKV_AWS_88:No public IP unless the caller sets associate_public_ip_address (default false); the complete example sets it because it has no NAT or bastion, and SSH stays limited to admin_cidrs.
  #checkov:skip=CKV_AWS_126:Detailed monitoring is billed per instance; it is opt-in through detailed_monitoring (default false), and basic 5-minute metrics stay on.
  ami                         = local.ami_id
  instance_type               = var.master_instance_type
  subnet_id                   = local.master_subnet_id
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  iam_instance_profile        = aws_iam_instance_profile.node.name
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip_address
  ebs_optimized               = true
  monitoring                  = var.detailed_monitoring
  user_data_base64            = base64encode(local.master_user_data)

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    encrypted             = true
    kms_key_id            = var.ebs_kms_key_arn
    volume_type           = var.root_volume_type
    volume_size           = var.root_volume_size
    delete_on_termination = true
    tags                  = local.master_tags
  }

  tags = local.master_tags

  lifecycle {
    # A new AMI published under ami_ssm_parameter must not replace a running master; replace it
    # on purpose with `terraform apply -replace=...aws_instance.master`.
    ignore_changes = [ami]

    precondition {
      condition     = contains(var.subnet_ids, local.master_subnet_id)
      error_message = "master_subnet_id must be one of subnet_ids."
    }
  }
}
