variable "enclave_id" {
  description = "Id of the enclave this workload belongs to."
  type        = string

  validation {
    condition     = length(var.enclave_id) > 0
    error_message = "enclave_id must be a non-empty string."
  }
}

variable "workload" {
  description = <<-EOT
    The workload to supervise, as an object or as a JSON string holding one:
    command (argv list, required), environment (map of string), workload_type
    (service | daemon | batch), expose_ports (list of ports), health_check_path,
    health_check_interval, startup_timeout_seconds, stop_grace_seconds. The
    supervisor validates the fields; Terraform only checks that a command is
    present.
  EOT
  type        = any

  validation {
    condition     = can(try(jsondecode(var.workload), var.workload).command)
    error_message = "workload must be an object (or a JSON string of one) with a \"command\" field."
  }
}

variable "workload_dir" {
  description = "Directory where the supervisor keeps workload.pid, workload.log and exit_code."
  type        = string

  validation {
    condition     = startswith(var.workload_dir, "/")
    error_message = "workload_dir must be an absolute path."
  }
}

variable "supervisor" {
  description = "Path of the binary that implements `workload start|stop|status` (the treza binary)."
  type        = string

  validation {
    condition     = startswith(var.supervisor, "/")
    error_message = "supervisor must be an absolute path."
  }
}
