# One EC2 host per enclave, running the workload in a Nitro Enclave.
#
# Values reach the host only as data: the typed workload is written as JSON to
# S3 (config.json) and the user data is a fixed script whose one templated
# value is a base64 locator (bucket, keys, region, log group, document hash).
# The script reads every value with jq; nothing is ever parsed by a shell.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_subnet" "host" {
  id = var.subnet_id
}

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

locals {
  name      = "treza-enclave-${var.enclave_id}"
  log_group = "/aws/ec2/enclave/${var.enclave_id}"

  bootstrap_prefix = "enclaves/${var.enclave_id}/bootstrap/"
  config_key       = "${local.bootstrap_prefix}config.json"
  status_key       = "${local.bootstrap_prefix}status.json"

  # The module's tags win over var.tags.
  tags = merge(var.tags, {
    EnclaveId = var.enclave_id
    ManagedBy = "treza"
    Wallet    = var.wallet_address
  })

  ports         = [for p in var.workload.expose_ports : floor(p)]
  workload_type = coalesce(var.workload.workload_type, length(local.ports) > 0 ? "service" : "daemon")

  # The document the host's scripts read (jq). Key order is fixed by jsonencode.
  document = jsonencode({
    enclave_id              = var.enclave_id
    image                   = var.workload.image
    cpu_count               = floor(var.workload.cpu_count)
    memory_mib              = floor(var.workload.memory_mib)
    enable_debug            = var.workload.enable_debug
    environment             = var.workload.environment
    workload_type           = local.workload_type
    expose_ports            = local.ports
    aws_services            = [for s in var.workload.aws_services : lower(s)]
    health_check_path       = var.workload.health_check_path != null ? var.workload.health_check_path : (local.workload_type == "service" ? "/" : null)
    health_check_interval   = floor(var.workload.health_check_interval)
    startup_timeout_seconds = floor(var.workload.startup_timeout_seconds)
  })

  # Where the host finds everything else. Base64 keeps the one templated
  # value inside the alphabet [A-Za-z0-9+/=], which no shell quoting can break.
  locator = base64encode(jsonencode({
    enclave_id    = var.enclave_id
    region        = data.aws_region.current.name
    bucket        = var.bootstrap_bucket
    config_key    = local.config_key
    config_sha256 = sha256(local.document)
    status_key    = local.status_key
    kms_key_arn   = var.kms_key_arn == null ? "" : var.kms_key_arn
    log_group     = local.log_group
  }))

  ami_id = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.al2023[0].value)
}

resource "aws_cloudwatch_log_group" "enclave" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_s3_object" "config" {
  bucket                 = var.bootstrap_bucket
  key                    = local.config_key
  content                = sensitive(local.document)
  content_type           = "application/json"
  server_side_encryption = var.kms_key_arn == null ? "AES256" : "aws:kms"
  kms_key_id             = var.kms_key_arn
  tags                   = local.tags
}

# Created here so that destroy removes it; the host overwrites it as the
# bootstrap progresses, so its content is never compared again.
resource "aws_s3_object" "status" {
  bucket = var.bootstrap_bucket
  key    = local.status_key
  content = jsonencode({
    enclaveId = var.enclave_id
    phase     = "pending"
    message   = "waiting for the host to boot"
    pcrs      = {}
  })
  content_type           = "application/json"
  server_side_encryption = var.kms_key_arn == null ? "AES256" : "aws:kms"
  kms_key_id             = var.kms_key_arn
  tags                   = local.tags

  lifecycle {
    ignore_changes = all
  }
}

resource "aws_instance" "host" {
  ami                     = local.ami_id
  instance_type           = var.workload.instance_type
  subnet_id               = var.subnet_id
  vpc_security_group_ids  = [var.shared_security_group_id]
  iam_instance_profile    = aws_iam_instance_profile.host.name
  key_name                = var.key_name
  monitoring              = true
  ebs_optimized           = true
  disable_api_termination = false

  associate_public_ip_address          = false
  instance_initiated_shutdown_behavior = "stop"

  enclave_options {
    enabled = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    encrypted             = true
    kms_key_id            = var.kms_key_arn
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gib
    delete_on_termination = true
    tags                  = local.tags
  }

  # A changed document changes its hash in the locator, which replaces the
  # host: user data runs only on first boot.
  user_data                   = templatefile("${path.module}/templates/user-data.sh.tftpl", { locator = local.locator })
  user_data_replace_on_change = true

  tags = merge(local.tags, { Name = local.name })

  lifecycle {
    # A newer Amazon Linux release must not replace a running enclave.
    ignore_changes = [ami]

    precondition {
      condition     = var.vpc_id == null ? true : data.aws_subnet.host.vpc_id == var.vpc_id
      error_message = "subnet_id ${var.subnet_id} is in ${data.aws_subnet.host.vpc_id}, not in vpc_id ${coalesce(var.vpc_id, "-")}."
    }
  }

  # Everything the host reads at first boot exists before it starts.
  depends_on = [
    terraform_data.preflight,
    aws_s3_object.config,
    aws_s3_object.status,
    aws_cloudwatch_log_group.enclave,
    aws_iam_role_policy.host,
  ]
}
