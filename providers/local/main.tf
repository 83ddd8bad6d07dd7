# Runs one enclave's workload as a supervised local process.
#
# Only Terraform's built-in provider is used. Every value reaches the
# supervisor through the provisioners' `environment` maps, never through the
# command string, so no value is ever parsed by a shell or by HCL templating.

terraform {
  required_version = ">= 1.5.0"
}

locals {
  # Accept the workload as an object or as a JSON string of one.
  workload = try(jsondecode(var.workload), var.workload)
  spec     = jsonencode(local.workload)
}

resource "terraform_data" "workload" {
  # A changed spec replaces the process: stop the old one, start the new one.
  # Marked sensitive so plans never print environment values.
  triggers_replace = sensitive(local.spec)

  # Destroy-time provisioners may only reference self, so everything that
  # `workload stop` needs is kept here. Nothing secret lives in input.
  input = {
    enclave_id   = var.enclave_id
    workload_dir = var.workload_dir
    supervisor   = var.supervisor
  }

  provisioner "local-exec" {
    command = "exec \"$TREZA_SUPERVISOR\" workload start"
    environment = {
      TREZA_SUPERVISOR    = var.supervisor
      TREZA_WORKLOAD_DIR  = var.workload_dir
      TREZA_WORKLOAD_SPEC = local.spec
      TREZA_ENCLAVE_ID    = var.enclave_id
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "exec \"$TREZA_SUPERVISOR\" workload stop"
    environment = {
      TREZA_SUPERVISOR   = self.input.supervisor
      TREZA_WORKLOAD_DIR = self.input.workload_dir
      TREZA_ENCLAVE_ID   = self.input.enclave_id
    }
  }
}
