# Inputs. `enclave_id` and `workload` have the same names and meaning as in
# providers/local, so the runner passes one shape to either module. Rules that
# depend only on one variable are validation blocks here; rules that need the
# instance-type table or two variables are preconditions in preflight.tf
# (Terraform 1.5 validation blocks cannot read locals or other variables).

variable "enclave_id" {
  description = "Id of the enclave this host runs. Names the IAM role, the log group /aws/ec2/enclave/<id> and the bootstrap prefix."
  type        = string

  validation {
    # 50 = 64 (IAM role name limit) - len("treza-enclave-").
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$", var.enclave_id))
    error_message = "enclave_id must be 1-50 letters, digits, '_', '.' or '-', starting with a letter or digit."
  }
}

variable "wallet_address" {
  description = "Wallet address of the enclave's owner; recorded in the Wallet tag."
  type        = string

  validation {
    # The characters an EC2 tag value accepts, without spaces.
    condition     = can(regex("^[A-Za-z0-9._:/=+@-]{1,128}$", var.wallet_address))
    error_message = "wallet_address must be 1-128 characters from letters, digits and . _ : / = + @ - (no spaces)."
  }
}

variable "workload" {
  description = <<-EOT
    The enclave's typed provider configuration (core's ProviderConfig, snake_case):
    image (container image the EIF is built from), instance_type, cpu_count and
    memory_mib (given to the enclave), image_size_mib (optional, size of the
    image; the enclave needs 4x), enable_debug, environment (map of string),
    workload_type (batch | service | daemon; default service when expose_ports
    is non-empty, else daemon), expose_ports, aws_services (only "kms" is
    supported), health_check_path, health_check_interval and
    startup_timeout_seconds. Attributes this module does not know (such as the
    local provider's `command`) are ignored.
  EOT
  type = object({
    image                   = string
    instance_type           = string
    cpu_count               = number
    memory_mib              = number
    image_size_mib          = optional(number)
    enable_debug            = optional(bool, false)
    environment             = optional(map(string), {})
    workload_type           = optional(string)
    expose_ports            = optional(list(number), [])
    aws_services            = optional(list(string), [])
    health_check_path       = optional(string)
    health_check_interval   = optional(number, 10)
    startup_timeout_seconds = optional(number, 60)
  })

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$", var.workload.image))
    error_message = "workload.image must be a container image reference such as \"nginx:1.27\": 1-512 letters, digits and . _ / : @ + -, starting with a letter or digit."
  }

  validation {
    condition     = floor(var.workload.cpu_count) == var.workload.cpu_count && var.workload.cpu_count >= 2 && var.workload.cpu_count <= 16 && var.workload.cpu_count % 2 == 0
    error_message = "workload.cpu_count must be an even number between 2 and 16, got ${var.workload.cpu_count}."
  }

  validation {
    condition     = floor(var.workload.memory_mib) == var.workload.memory_mib && var.workload.memory_mib >= 1024 && var.workload.memory_mib <= 16384
    error_message = "workload.memory_mib must be a whole number between 1024 and 16384, got ${var.workload.memory_mib}."
  }

  validation {
    # MIN_MEMORY_MIB_PER_VCPU in core.
    condition     = var.workload.memory_mib >= 512 * var.workload.cpu_count
    error_message = "workload.memory_mib must be at least 512 MiB per vCPU, so at least ${512 * var.workload.cpu_count} for cpu_count ${var.workload.cpu_count}, got ${var.workload.memory_mib}."
  }

  validation {
    # nitro-cli refuses an enclave with less than 4x the EIF's size in memory.
    condition = (var.workload.image_size_mib == null ? true :
      var.workload.image_size_mib > 0 && var.workload.memory_mib >= 4 * var.workload.image_size_mib
    )
    error_message = "workload.memory_mib must be at least 4 times workload.image_size_mib (a positive number of MiB) when that is given."
  }

  validation {
    condition     = var.workload.workload_type == null ? true : contains(["batch", "service", "daemon"], var.workload.workload_type)
    error_message = "workload.workload_type must be one of batch, service, daemon."
  }

  validation {
    condition = length(var.workload.expose_ports) <= 32 && alltrue([
      for p in var.workload.expose_ports : floor(p) == p && p >= 1 && p <= 65535
    ]) && length(distinct(var.workload.expose_ports)) == length(var.workload.expose_ports)
    error_message = "workload.expose_ports must be at most 32 distinct port numbers between 1 and 65535."
  }

  validation {
    condition     = var.workload.workload_type != "service" || length(var.workload.expose_ports) > 0
    error_message = "workload.expose_ports must list at least one port when workload.workload_type is service."
  }

  validation {
    # Names only: values may be secrets and are never echoed.
    condition = length(var.workload.environment) <= 100 && alltrue([
      for k, v in var.workload.environment :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && length(v) <= 4096 && !strcontains(v, "\u0000")
    ])
    error_message = "workload.environment must have at most 100 entries; names start with a letter or underscore and contain only letters, digits and underscores; values are at most 4096 characters without NUL."
  }

  validation {
    condition     = length(var.workload.aws_services) <= 32 && alltrue([for s in var.workload.aws_services : contains(["kms"], lower(s))])
    error_message = "workload.aws_services may only contain \"kms\" for the aws-nitro provider."
  }

  validation {
    # RE2 caps repetition counts at 1000, so the length is checked separately.
    condition     = var.workload.health_check_path == null ? true : length(var.workload.health_check_path) <= 1024 && can(regex("^/[!-~]*$", var.workload.health_check_path))
    error_message = "workload.health_check_path must be a URL path starting with '/' without spaces, at most 1024 characters, such as \"/health\"."
  }

  validation {
    condition     = floor(var.workload.health_check_interval) == var.workload.health_check_interval && var.workload.health_check_interval >= 1 && var.workload.health_check_interval <= 3600
    error_message = "workload.health_check_interval must be between 1 and 3600 seconds, got ${var.workload.health_check_interval}."
  }

  validation {
    condition     = floor(var.workload.startup_timeout_seconds) == var.workload.startup_timeout_seconds && var.workload.startup_timeout_seconds >= 1 && var.workload.startup_timeout_seconds <= 3600
    error_message = "workload.startup_timeout_seconds must be between 1 and 3600 seconds, got ${var.workload.startup_timeout_seconds}."
  }
}

variable "subnet_id" {
  description = "Private subnet the host is placed in (SUBNET_ID). The host never gets a public IP."
  type        = string

  validation {
    condition     = can(regex("^subnet-[0-9a-f]{8,17}$", var.subnet_id))
    error_message = "subnet_id must look like subnet-0123456789abcdef0."
  }
}

variable "vpc_id" {
  description = "VPC the subnet must belong to (VPC_ID). When given, a subnet in another VPC fails the plan."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null ? true : can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "shared_security_group_id" {
  description = "The platform's shared enclave security group (SHARED_SECURITY_GROUP_ID); the only security group on the host."
  type        = string

  validation {
    condition     = can(regex("^sg-[0-9a-f]{8,17}$", var.shared_security_group_id))
    error_message = "shared_security_group_id must look like sg-0123456789abcdef0."
  }
}

variable "bootstrap_bucket" {
  description = "Existing S3 bucket for bootstrap objects. The module writes enclaves/<id>/bootstrap/config.json there; the host writes enclaves/<id>/bootstrap/status.json."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bootstrap_bucket))
    error_message = "bootstrap_bucket must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the log group, the root volume and the bootstrap objects. Null uses AWS managed encryption. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "enclave_kms_key_arns" {
  description = "KMS keys the enclave may use (Decrypt, GenerateDataKey) when workload.aws_services contains \"kms\". Calls must carry an enclave attestation document; see attestation_pcrs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.enclave_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", a))])
    error_message = "enclave_kms_key_arns must hold KMS key ARNs (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "attestation_pcrs" {
  description = "Expected PCR values of the enclave image, e.g. { PCR0 = \"<96 hex>\" }. When given, KMS use requires an attestation document with exactly these values (kms:RecipientAttestation:PCR<n>). Take them from a previous bootstrap's status.json."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.attestation_pcrs : contains(["PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"], k) && can(regex("^[0-9a-fA-F]{96}$", v))
    ])
    error_message = "attestation_pcrs keys must be PCR0, PCR1, PCR2, PCR3, PCR4 or PCR8, and values 96 hexadecimal characters (SHA-384)."
  }
}

variable "ecr_repository_arns" {
  description = "ECR repositories the host may pull workload.image from. Empty for public images."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", a))])
    error_message = "ecr_repository_arns must hold ECR repository ARNs (arn:aws:ecr:<region>:<account>:repository/<name>)."
  }
}

variable "ami_id" {
  description = "AMI for the host (x86_64, with dnf packages aws-nitro-enclaves-cli, docker, jq, socat, amazon-cloudwatch-agent). Null uses the current Amazon Linux 2023 AMI; later AMI releases do not replace a running host."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null ? true : can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH. Null (the default) means no key pair; prefer enable_ssm."
  type        = string
  default     = null
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore so operators can reach the parent instance through Session Manager."
  type        = bool
  default     = false
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary for the instance role, if the account requires one."
  type        = string
  default     = null
}

variable "root_volume_size_gib" {
  description = "Size of the encrypted root volume; it holds the image, the derived image and the EIF."
  type        = number
  default     = 30

  validation {
    condition     = floor(var.root_volume_size_gib) == var.root_volume_size_gib && var.root_volume_size_gib >= 8 && var.root_volume_size_gib <= 1024
    error_message = "root_volume_size_gib must be a whole number between 8 and 1024."
  }
}

variable "log_retention_days" {
  description = "Retention of the enclave's log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "tags" {
  description = "Extra tags for every resource. EnclaveId, ManagedBy and Wallet are always set by the module and cannot be overridden."
  type        = map(string)
  default     = {}
}
