# The host's instance role: only what this one enclave's host needs.

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "Ec2AssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

locals {
  bucket_arn       = "arn:${data.aws_partition.current.partition}:s3:::${var.bootstrap_bucket}"
  pcr_conditions   = { for k, v in var.attestation_pcrs : "kms:RecipientAttestation:${k}" => lower(v) }
  ecr_pull_enabled = length(var.ecr_repository_arns) > 0
}

data "aws_iam_policy_document" "host" {
  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.enclave.arn, "${aws_cloudwatch_log_group.enclave.arn}:*"]
  }

  statement {
    sid       = "ReadOwnBootstrapObjects"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.bootstrap_prefix}*"]
  }

  statement {
    sid       = "WriteOwnBootstrapStatus"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${local.status_key}"]
  }

  # Reading and writing the bootstrap objects when they are encrypted with the
  # customer key; usable only through S3, for this bucket.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "BootstrapObjectsKeyThroughS3"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:s3:arn"
        values   = [local.bucket_arn]
      }
    }
  }

  # The enclave's own KMS use, only when asked for, and only with an
  # attestation document whose PCRs match the pinned ones (preflight requires
  # at least PCR0 and refuses debug mode whenever KMS is asked for).
  dynamic "statement" {
    for_each = local.wants_kms ? ["kms"] : []
    content {
      sid       = "EnclaveKmsWithAttestation"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.enclave_kms_key_arns

      condition {
        test     = "Null"
        variable = "kms:RecipientAttestation:ImageSha384"
        values   = ["false"]
      }

      dynamic "condition" {
        for_each = local.pcr_conditions
        content {
          test     = "StringEqualsIgnoreCase"
          variable = condition.key
          values   = [condition.value]
        }
      }
    }
  }

  dynamic "statement" {
    for_each = local.ecr_pull_enabled ? ["ecr"] : []
    content {
      sid       = "PullWorkloadImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = var.ecr_repository_arns
    }
  }

  dynamic "statement" {
    for_each = local.ecr_pull_enabled ? ["ecr-token"] : []
    content {
      # GetAuthorizationToken has no resource-level permissions; AWS requires "*".
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role" "host" {
  name                 = local.name
  description          = "treza enclave host ${var.enclave_id}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "host" {
  name   = "enclave-host"
  role   = aws_iam_role.host.id
  policy = data.aws_iam_policy_document.host.json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count      = var.enable_ssm ? 1 : 0
  role       = aws_iam_role.host.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "host" {
  name = local.name
  role = aws_iam_role.host.name
  tags = local.tags
}
