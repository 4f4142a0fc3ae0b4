# The nodes' IAM role: least privilege. A node can read and write the objects of the cluster's
# own bucket and list that bucket, and nothing else: no ec2:Describe*, no
# DescribeInstanceAttribute (which would expose every instance's user-data), no other bucket.
# sparkboot discovers the nodes from the operator's machine with the operator's credentials, so
# the nodes need no EC2 or Auto Scaling permissions at all.

data "aws_iam_policy_document" "node_assume_role" {
  statement {
    sid     = "Ec2AssumesTheNodeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "node" {
  statement {
    sid    = "ListTheClusterBucket"
    effect = "Allow"
    actions = [
      "s3:GetBucketLocation",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [aws_s3_bucket.cluster.arn]
  }

  # Spark's S3A connector writes with multipart uploads and commits by copy + delete, so besides
  # Get/Put it needs DeleteObject and the multipart calls; all are limited to this bucket's objects.
  statement {
    sid    = "ReadWriteTheClusterBucketObjects"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${aws_s3_bucket.cluster.arn}/*"]
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
        values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.cluster_name}-node-"
  description        = "Nodes of sparkboot cluster ${var.cluster_name}: access to the cluster bucket only"
  assume_role_policy = data.aws_iam_policy_document.node_assume_role.json

  tags = local.common_tags
}

resource "aws_iam_role_policy" "node" {
  name   = "cluster-bucket-access"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node.json
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "${var.cluster_name}-node-"
  role        = aws_iam_role.node.name

  tags = local.common_tags
}
