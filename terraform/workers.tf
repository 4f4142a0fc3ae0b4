# The workers: an Auto Scaling group of spot instances built from a launch template (never a
# launch configuration). Several instance types with the price-capacity-optimized strategy and
# capacity rebalancing keep the group at size through spot interruptions; an on-demand base or
# share is optional. The launch template applies the same hardening as the master (IMDSv2 only,
# hop limit 1, encrypted root volume) and tags every instance and volume with the cluster and
# role at launch. The group's lifecycle hooks (enable_watch) are in watch.tf.

locals {
  # With the launch hook, a new worker sits in Pending:Wait until the watcher completes its
  # launch action or the heartbeat runs out (then it goes InService), so a scale-up apply waits
  # for longer than the heartbeat instead of timing out while no watcher runs.
  wait_for_capacity_timeout = coalesce(
    var.worker_wait_for_capacity_timeout,
    var.enable_watch ? "${var.launch_hook_heartbeat_timeout + 300}s" : "10m",
  )
}

resource "aws_launch_template" "worker" {
  #checkov:skip=CKV_AWS_88:No public IP unless the caller sets worker_associate_public_ip_address (default false); the complete example sets it because it has no NAT gateway, and SSH stays limited to admin_cidrs and admin_security_group_ids.
  count = local.create ? 1 : 0

  name_prefix            = "${var.cluster_name}-worker-"
  description            = "Spot workers of sparkboot cluster ${var.cluster_name}"
  image_id               = local.ami_id
  key_name               = var.key_name
  ebs_optimized          = true
  user_data              = base64encode(local.worker_user_data)
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.node[0].arn
  }

  network_interfaces {
    device_index                = 0
    security_groups             = concat([aws_security_group.cluster[0].id], var.worker_security_group_ids)
    associate_public_ip_address = local.worker_public_ip
    delete_on_termination       = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = data.aws_ami.node[0].root_device_name

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
  count = local.create ? 1 : 0

  name                = local.worker_asg_name
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.worker_min_size
  max_size            = var.worker_max_size
  desired_capacity    = var.worker_desired_capacity
  capacity_rebalance  = true

  health_check_type         = "EC2"
  health_check_grace_period = 120
  wait_for_capacity_timeout = local.wait_for_capacity_timeout

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = var.worker_on_demand_base_capacity
      on_demand_percentage_above_base_capacity = var.worker_on_demand_percentage_above_base_capacity
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.worker[0].id
        version            = aws_launch_template.worker[0].latest_version
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
