# The master: one on-demand instance (losing it to a spot interruption would stop every job).
# IMDSv2 only, hop limit 1 (no container on the node can reach the metadata service), encrypted
# root volume, the node instance profile, and no public IP unless
# master_associate_public_ip_address.

resource "aws_instance" "master" {
  #checkov:skip=CKV_AWS_88:No public IP unless the caller sets master_associate_public_ip_address (default false); the examples set it because their master is the SSH entry point (no VPN or bastion), and SSH stays limited to admin_cidrs and admin_security_group_ids.
  #checkov:skip=CKV_AWS_126:Detailed monitoring is billed per instance; it is opt-in through detailed_monitoring (default false), and basic 5-minute metrics stay on.
  count = local.create ? 1 : 0

  ami                         = local.ami_id
  instance_type               = var.master_instance_type
  subnet_id                   = local.master_subnet_id
  vpc_security_group_ids      = concat([aws_security_group.cluster[0].id], var.master_security_group_ids)
  iam_instance_profile        = aws_iam_instance_profile.node[0].name
  key_name                    = var.key_name
  associate_public_ip_address = local.master_public_ip
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
    # on purpose with `terraform apply -replace=...aws_instance.master[0]`.
    ignore_changes = [ami]
  }
}
