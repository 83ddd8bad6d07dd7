# Enclave-capable instance types and their sizes. Mirrors INSTANCE_TYPES in
# crates/core/src/validate.rs; keep the two tables identical.

locals {
  instance_types = {
    "m6i.xlarge"  = { vcpus = 4, memory_mib = 16384 }
    "m6i.2xlarge" = { vcpus = 8, memory_mib = 32768 }
    "m6i.4xlarge" = { vcpus = 16, memory_mib = 65536 }
    "m6i.8xlarge" = { vcpus = 32, memory_mib = 131072 }
    "c6i.xlarge"  = { vcpus = 4, memory_mib = 8192 }
    "c6i.2xlarge" = { vcpus = 8, memory_mib = 16384 }
    "c6i.4xlarge" = { vcpus = 16, memory_mib = 32768 }
    "c6i.8xlarge" = { vcpus = 32, memory_mib = 65536 }
    "r6i.xlarge"  = { vcpus = 4, memory_mib = 32768 }
    "r6i.2xlarge" = { vcpus = 8, memory_mib = 65536 }
    "r6i.4xlarge" = { vcpus = 16, memory_mib = 131072 }
    "m5.xlarge"   = { vcpus = 4, memory_mib = 16384 }
    "m5.2xlarge"  = { vcpus = 8, memory_mib = 32768 }
    "m5.4xlarge"  = { vcpus = 16, memory_mib = 65536 }
    "c5.xlarge"   = { vcpus = 4, memory_mib = 8192 }
    "c5.2xlarge"  = { vcpus = 8, memory_mib = 16384 }
    "c5.4xlarge"  = { vcpus = 16, memory_mib = 32768 }
  }

  # The parent instance keeps this much for its OS, Docker, the EIF build and
  # the vsock proxies (PARENT_MIN_VCPUS / PARENT_RESERVED_MEMORY_MIB in core).
  parent_min_vcpus           = 2
  parent_reserved_memory_mib = 2048
}
