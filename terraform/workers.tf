# The workers: an Auto Scaling group of spot instances built from a launch template (never a
# launch configuration). Several instance types with the price-capacity-optimized strategy and
# capacity rebalancing keep the group at size through spot interruptions. The launch template
# applies the same hardening as the master (IMDSv2 only, hop limit 1, encrypted root volume) and
# tags every instance and volume with the cluster and role at launch.

resource "aws_launch_template" "worker" {
  #checkov:skip=CKV_AWS_88:No public IP unless the caller sets associate_public_ip_address (default false); the complete example sets it because it has no NAT or bastion, and SSH stays limited to admin_cidrs.
  name_prefix            = "${var.cluster_name}-worker-"
  description            = "Spot workers of sparkboot cluster ${var.cluster_name}"
  image_id               = local.ami_id
  key_name               = var.key_name
  ebs_optimized          = true
  user_data              = base64encode(local.worker_user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.node.arn
  }

  network_interfaces {
    device_index                = 0
    security_groups             = [aws_security_group.cluster.id]
    associate_public_ip_address = var.associate_public_ip_address
    delete_on_termination       = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = data.aws_ami.node.root_device_name

    ebs {
      encrypted             = true
      kms_key_id            = var.ebs_kms_key_arn
      volume_type           = var.root_volume_type
      volume_size           = var.root_volume_size
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = var.detailed_monitoring
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.worker_tags
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.worker_tags
  }

  tags = local.worker_tags
}

resource "aws_autoscaling_group" "workers" {
  name                = "${var.cluster_name}-workers"
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.worker_min_size
  max_size            = var.worker_max_size
  desired_capacity    = var.worker_desired_capacity
  capacity_rebalance  = true

  health_check_type         = "EC2"
  health_check_grace_period = 120

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = 0
      on_demand_percentage_above_base_capacity = 0
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.worker.id
        version            = aws_launch_template.worker.latest_version
      }

      dynamic "override" {
        for_each = var.worker_instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  # The group carries the same cluster and role tags, so the group itself can be found by tag;
  # propagated at launch they agree with the launch template's instance tags.
  dynamic "tag" {
    for_each = local.worker_tags

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    precondition {
      condition     = var.worker_min_size <= var.worker_desired_capacity && var.worker_desired_capacity <= var.worker_max_size
      error_message = "worker_desired_capacity must lie between worker_min_size and worker_max_size."
    }
  }
}
