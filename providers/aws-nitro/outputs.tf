output "instance_id" {
  description = "Id of the EC2 host running the enclave (tagged EnclaveId)."
  value       = aws_instance.host.id
}

output "private_ip" {
  description = "Private IPv4 address of the host; expose_ports are forwarded to the enclave there."
  value       = aws_instance.host.private_ip
}

output "log_group" {
  description = "CloudWatch log group receiving the bootstrap, enclave and parent-agent logs."
  value       = aws_cloudwatch_log_group.enclave.name
}

output "bootstrap_status_location" {
  description = "S3 URI of the JSON status the host maintains: phase (pending, bootstrapping, building, starting, healthy, unhealthy, exited, failed), message, pcrs, updatedAt."
  value       = "s3://${var.bootstrap_bucket}/${local.status_key}"
}

output "bootstrap_config_location" {
  description = "S3 URI of the configuration document the host reads."
  value       = "s3://${var.bootstrap_bucket}/${local.config_key}"
}
