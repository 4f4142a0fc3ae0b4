# Spot-churn plumbing for `sparkboot watch` (all of it only with enable_watch):
#
#  - Two lifecycle hooks on the workers' group. A launching worker waits in Pending:Wait until
#    the watcher has configured it and completes the launch action; a terminating worker waits
#    in Terminating:Wait while the watcher decommissions it from Spark. Both default to
#    CONTINUE, so a watcher that is down never shrinks or stalls the cluster: when the heartbeat
#    runs out, a new worker goes InService anyway (the next converge configures it; ABANDON
#    would terminate it and churn), and a terminating worker terminates as it would have.
#    The hooks set no notification target or role: Auto Scaling sends lifecycle actions to
#    EventBridge by default, which is where the rules below pick them up.
#  - Three EventBridge rules on the default bus, one SQS queue as their only target:
#    this group's lifecycle actions (filtered by group name), EC2 spot interruption warnings and
#    EC2 rebalance recommendations. EC2 events carry no group name, so those two rules see every
#    instance of the account and region; the watcher keeps the ones whose instance ID belongs
#    to the group.
#  - The queue: SSE with SQS-managed keys, long polling, a dead-letter queue (which also takes
#    events EventBridge could not deliver), and a policy that refuses requests without TLS and
#    lets only these three rules send.
#  - A managed IAM policy with exactly what the watcher needs, for the operator to attach to
#    the role or user that runs `sparkboot watch`.

locals {
  launch_hook_name    = "${var.cluster_name}-worker-launch"
  terminate_hook_name = "${var.cluster_name}-worker-terminate"

  # Sent with every lifecycle action, so the watcher can check whose action it is.
  hook_metadata = jsonencode({
    cluster = var.cluster_name
    role    = "worker"
  })

  watch_event_patterns = {
    lifecycle = {
      description = "Launch and terminate lifecycle actions of the workers' Auto Scaling group of sparkboot cluster ${var.cluster_name}"
      pattern = jsonencode({
        source = ["aws.autoscaling"]
        detail-type = [
          "EC2 Instance-launch Lifecycle Action",
          "EC2 Instance-terminate Lifecycle Action",
        ]
        detail = {
          AutoScalingGroupName = [local.worker_asg_name]
        }
      })
    }
    spot-interruption = {
      description = "EC2 spot interruption warnings (every instance of the account and region; sparkboot watch keeps those of cluster ${var.cluster_name})"
      pattern = jsonencode({
        source      = ["aws.ec2"]
        detail-type = ["EC2 Spot Instance Interruption Warning"]
      })
    }
    rebalance = {
      description = "EC2 rebalance recommendations (every instance of the account and region; sparkboot watch keeps those of cluster ${var.cluster_name})"
      pattern = jsonencode({
        source      = ["aws.ec2"]
        detail-type = ["EC2 Instance Rebalance Recommendation"]
      })
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Lifecycle hooks
# ---------------------------------------------------------------------------------------------

resource "aws_autoscaling_lifecycle_hook" "launch" {
  count = local.watch ? 1 : 0

  name                   = local.launch_hook_name
  autoscaling_group_name = aws_autoscaling_group.workers[0].name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.launch_hook_heartbeat_timeout
  default_result         = "CONTINUE"
  notification_metadata  = local.hook_metadata
}

resource "aws_autoscaling_lifecycle_hook" "terminate" {
  count = local.watch ? 1 : 0

  name                   = local.terminate_hook_name
  autoscaling_group_name = aws_autoscaling_group.workers[0].name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.terminate_hook_heartbeat_timeout
  default_result         = "CONTINUE"
  notification_metadata  = local.hook_metadata
}

# ---------------------------------------------------------------------------------------------
# Queue and dead-letter queue
# ---------------------------------------------------------------------------------------------

resource "aws_sqs_queue" "watch_dlq" {
  count = local.watch ? 1 : 0

  name                      = "${var.cluster_name}-watch-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600 # 14 days, the maximum: time to look at what failed

  tags = local.common_tags
}

resource "aws_sqs_queue" "watch" {
  count = local.watch ? 1 : 0

  name                      = "${var.cluster_name}-watch"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 345600 # 4 days (the SQS default)
  receive_wait_time_seconds = 20     # long polling
  # Long enough for the watcher to act on one event; it extends the visibility of a message
  # (sqs:ChangeMessageVisibility) while a converge runs.
  visibility_timeout_seconds = 300

  # A message the watcher received 5 times without deleting it moves to the dead-letter queue.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.watch_dlq[0].arn
    maxReceiveCount     = 5
  })

  tags = local.common_tags
}

data "aws_iam_policy_document" "watch_queue" {
  count = local.watch ? 1 : 0

  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.watch[0].arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "EventBridgeRulesOfThisClusterSend"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.watch[0].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.watch : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "watch" {
  count = local.watch ? 1 : 0

  queue_url = aws_sqs_queue.watch[0].id
  policy    = data.aws_iam_policy_document.watch_queue[0].json
}

# The dead-letter queue also receives the events EventBridge could not deliver to the queue
# (each target's dead_letter_config), so the same rules may send to it.
data "aws_iam_policy_document" "watch_dlq" {
  count = local.watch ? 1 : 0

  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.watch_dlq[0].arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "EventBridgeRulesOfThisClusterSendUndeliverable"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.watch_dlq[0].arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.watch : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "watch_dlq" {
  count = local.watch ? 1 : 0

  queue_url = aws_sqs_queue.watch_dlq[0].id
  policy    = data.aws_iam_policy_document.watch_dlq[0].json
}

# ---------------------------------------------------------------------------------------------
# EventBridge rules
# ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "watch" {
  for_each = local.watch ? local.watch_event_patterns : {}

  name          = "${var.cluster_name}-${each.key}"
  description   = each.value.description
  event_pattern = each.value.pattern
  state         = "ENABLED"

  tags = local.common_tags
}

resource "aws_cloudwatch_event_target" "watch" {
  for_each = aws_cloudwatch_event_rule.watch

  rule      = each.value.name
  target_id = "sparkboot-watch-queue"
  arn       = aws_sqs_queue.watch[0].arn

  dead_letter_config {
    arn = aws_sqs_queue.watch_dlq[0].arn
  }

  # EventBridge can only deliver once the queue policy lets the rules send.
  depends_on = [aws_sqs_queue_policy.watch, aws_sqs_queue_policy.watch_dlq]
}

# ---------------------------------------------------------------------------------------------
# IAM policy for whoever runs `sparkboot watch`
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "watch" {
  count = local.watch ? 1 : 0

  statement {
    sid    = "ConsumeTheWatchQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.watch[0].arn]
  }

  statement {
    sid    = "CompleteTheWorkersLifecycleActions"
    effect = "Allow"
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
    ]
    resources = [aws_autoscaling_group.workers[0].arn]
  }

  # Discovery (the master by tag, the group's members). These Describe calls support no
  # resource-level permissions, so their resource can only be "*".
  statement {
    sid    = "DiscoverTheCluster"
    effect = "Allow"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeScalingActivities",
      "ec2:DescribeInstances",
    ]
    resources = ["*"]
  }

  # distribution = "s3": sparkboot uploads the Spark archive once and signs GET URLs for it.
  statement {
    sid       = "ListTheClusterBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.cluster[0].arn]
  }

  statement {
    sid       = "StageObjectsInTheClusterBucket"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.cluster[0].arn}/*"]
  }

  # Only with a customer-managed bucket key; the AWS-managed aws/s3 key needs no IAM grant.
  dynamic "statement" {
    for_each = var.s3_kms_key_arn == null ? [] : [var.s3_kms_key_arn]

    content {
      sid       = "UseTheBucketKeyThroughS3Only"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "watch" {
  count = local.watch ? 1 : 0

  name_prefix = "${var.cluster_name}-watch-"
  description = "sparkboot watch for cluster ${var.cluster_name}: its event queue, the workers' lifecycle actions, discovery and the cluster bucket"
  policy      = data.aws_iam_policy_document.watch[0].json

  tags = local.common_tags
}
