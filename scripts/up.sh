#!/usr/bin/env bash
# Runs treza on this machine: builds it, installs Terraform if it is missing,
# and starts the server in the foreground (extra arguments go to `treza up`).
set -euo pipefail
cd "$(dirname "$0")/.."
tf=$(scripts/install-terraform.sh | tail -n 1)
export TREZA_TERRAFORM="$tf"
cargo build --release -p treza
exec target/release/treza up "$@"
