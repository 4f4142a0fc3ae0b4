# The nodes' IAM role: least privilege. A node can read and write the objects of the cluster's
# own bucket and list that bucket, and nothing else: no ec2:Describe*, no
# DescribeInstanceAttribute (which would expose every instance's user-data), no other bucket.
# sparkboot discovers the nodes from the operator's machine with the operator's credentials, so
# the nodes need no EC2 or Auto Scaling permissions at all. A caller can add a permissions
# boundary and further managed policies (node_role_permissions_boundary, node_role_policy_arns).
# The policy for the operator who runs `sparkboot watch` is in watch.tf.

data "aws_iam_policy_document" "node_assume_role" {
  count = local.create ? 1 : 0

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
  count = local.create ? 1 : 0

  statement {
    sid    = "ListTheClusterBucket"
    effect = "Allow"
    actions = [
      "s3:GetBucketLocation",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [aws_s3_bucket.cluster[0].arn]
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

resource "aws_iam_role" "node" {
  count = local.create ? 1 : 0

  name_prefix          = "${var.cluster_name}-node-"
  description          = "Nodes of sparkboot cluster ${var.cluster_name}: access to the cluster bucket only"
  assume_role_policy   = data.aws_iam_policy_document.node_assume_role[0].json
  permissions_boundary = var.node_role_permissions_boundary

  tags = local.common_tags
}

resource "aws_iam_role_policy" "node" {
  count = local.create ? 1 : 0

  name   = "cluster-bucket-access"
  role   = aws_iam_role.node[0].id
  policy = data.aws_iam_policy_document.node[0].json
}

# The caller's extra managed policies, keyed by the caller's own names: the ARNs may be unknown
# until apply (policies made in the same configuration), the keys never are.
resource "aws_iam_role_policy_attachment" "node_extra" {
  for_each = local.create ? var.node_role_policy_arns : {}

  role       = aws_iam_role.node[0].name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "node" {
  count = local.create ? 1 : 0

  name_prefix = "${var.cluster_name}-node-"
  role        = aws_iam_role.node[0].name

  tags = local.common_tags
}
