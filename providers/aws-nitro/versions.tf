terraform {
  # Optional object attributes with defaults need >= 1.3; `terraform_data` and
  # `strcontains` need >= 1.5. Validation blocks here only read their own
  # variable, as 1.5 requires; rules that need the instance-type table are
  # preconditions in preflight.tf.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}
