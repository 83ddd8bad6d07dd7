output "instance_id" {
  description = "Stable id of the local \"instance\" that hosts the workload."
  value       = "local-${terraform_data.workload.output.enclave_id}"
}

output "workload_dir" {
  description = "Directory holding workload.pid, workload.log and exit_code."
  value       = terraform_data.workload.output.workload_dir
}

output "log_file" {
  description = "The workload's combined stdout and stderr."
  value       = "${terraform_data.workload.output.workload_dir}/workload.log"
}
