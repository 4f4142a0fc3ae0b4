# The cluster's S3 bucket (event logs, job input and output). Private by construction: all four
# public-access blocks on, ACLs disabled, SSE-KMS by default, TLS 1.2+ required by policy,
# versioned, with a lifecycle that cleans up old versions and abandoned multipart uploads.

resource "aws_s3_bucket" "cluster" {
  #checkov:skip=CKV_AWS_18:Server access logs need a separate log bucket whose retention is a site decision; the module takes no position and CloudTrail data events can cover auditing.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost for cluster scratch and job data that is reproducible; callers who need it add an aws_s3_bucket_replication_configuration.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events in this design; notifications without a consumer add cost and no value.
  count = local.create ? 1 : 0

  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.cluster_name}-" : null
  force_destroy = var.force_destroy

  tags = local.common_tags
}

resource "aws_s3_bucket_public_access_block" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.s3_kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id

  rule {
    id     = "expire-old-versions-and-abandoned-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
  }

  # Lifecycle rules on a versioned bucket need versioning in place first.
  depends_on = [aws_s3_bucket_versioning.cluster]
}

data "aws_iam_policy_document" "bucket" {
  count = local.create ? 1 : 0

  statement {
    sid       = "DenyRequestsWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.cluster[0].arn, "${aws_s3_bucket.cluster[0].arn}/*"]

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
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.cluster[0].arn, "${aws_s3_bucket.cluster[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "cluster" {
  count = local.create ? 1 : 0

  bucket = aws_s3_bucket.cluster[0].id
  policy = data.aws_iam_policy_document.bucket[0].json

  # S3 rejects a bucket policy while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.cluster]
}
