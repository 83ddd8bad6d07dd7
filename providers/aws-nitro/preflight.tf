# Preflight rules that need the instance-type table or more than one variable.
# They fail `terraform plan` before anything is created. This file reads only
# variables and instance_types.tf, so tests/validation.sh can plan it alone
# without the AWS provider.

locals {
  instance = lookup(local.instance_types, var.workload.instance_type, null)

  # Largest enclave the instance can host while the parent keeps its share.
  max_enclave_vcpus      = local.instance == null ? 0 : local.instance.vcpus - local.parent_min_vcpus
  max_enclave_memory_mib = local.instance == null ? 0 : local.instance.memory_mib - local.parent_reserved_memory_mib

  wants_kms = contains([for s in var.workload.aws_services : lower(s)], "kms")
}

resource "terraform_data" "preflight" {
  input = {
    instance_type = var.workload.instance_type
    cpu_count     = var.workload.cpu_count
    memory_mib    = var.workload.memory_mib
  }

  lifecycle {
    precondition {
      condition     = local.instance != null
      error_message = "workload.instance_type must be an enclave-capable instance type, one of ${join(", ", sort(keys(local.instance_types)))}, got \"${var.workload.instance_type}\"."
    }

    precondition {
      condition     = local.instance == null ? true : var.workload.cpu_count <= local.max_enclave_vcpus
      error_message = "workload.cpu_count ${var.workload.cpu_count} does not fit instance_type ${var.workload.instance_type}: it has ${local.instance == null ? 0 : local.instance.vcpus} vCPUs and the parent keeps ${local.parent_min_vcpus}, so the enclave can have at most ${local.max_enclave_vcpus}."
    }

    precondition {
      condition     = local.instance == null ? true : var.workload.memory_mib <= local.max_enclave_memory_mib
      error_message = "workload.memory_mib ${var.workload.memory_mib} does not fit instance_type ${var.workload.instance_type}: it has ${local.instance == null ? 0 : local.instance.memory_mib} MiB and the parent keeps ${local.parent_reserved_memory_mib}, so the enclave can have at most ${local.max_enclave_memory_mib}."
    }

    precondition {
      condition     = !local.wants_kms || length(var.enclave_kms_key_arns) > 0
      error_message = "enclave_kms_key_arns must name at least one key when workload.aws_services contains \"kms\"."
    }

    precondition {
      # Without pinned PCRs any enclave image the parent builds could use the keys.
      condition     = !local.wants_kms || contains(keys(var.attestation_pcrs), "PCR0")
      error_message = "attestation_pcrs must pin at least PCR0 (the image measurement) when workload.aws_services contains \"kms\", so only this image's enclave can use the keys."
    }

    precondition {
      # A debug-mode enclave's console is readable from the parent and it attests with all-zero PCRs.
      condition     = !(local.wants_kms && var.workload.enable_debug)
      error_message = "workload.enable_debug = true cannot be combined with \"kms\" in workload.aws_services: a debug-mode enclave attests with all-zero PCRs and its console is readable from the parent."
    }

    precondition {
      # Debug-mode enclaves attest with all-zero PCRs, so pinned values could never match.
      condition     = !(var.workload.enable_debug && length(var.attestation_pcrs) > 0)
      error_message = "attestation_pcrs cannot be combined with workload.enable_debug = true: a debug-mode enclave's attestation carries all-zero PCRs."
    }
  }
}
