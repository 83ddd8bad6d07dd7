# Values that switch on every optional statement and attachment, so checkov
# also scans the module's dynamic blocks (the defaults leave them empty).
enclave_id               = "enc_1700000000000_abcdefghi"
wallet_address           = "0x1234567890abcdef1234567890abcdef12345678"
subnet_id                = "subnet-0123456789abcdef0"
vpc_id                   = "vpc-0123456789abcdef0"
shared_security_group_id = "sg-0123456789abcdef0"
bootstrap_bucket         = "treza-bootstrap-example"
kms_key_arn              = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
enclave_kms_key_arns     = ["arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
ecr_repository_arns      = ["arn:aws:ecr:us-east-1:123456789012:repository/workload"]
enable_ssm               = true
attestation_pcrs = {
  PCR0 = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000abc"
}
workload = {
  image         = "123456789012.dkr.ecr.us-east-1.amazonaws.com/workload:1"
  instance_type = "m6i.xlarge"
  cpu_count     = 2
  memory_mib    = 4096
  aws_services  = ["kms"]
  expose_ports  = [443]
}
