#!/usr/bin/env bash
# The test suite: installs the tools the tests need (Terraform), then runs
# every test of the workspace, including the end-to-end tests that drive the
# real server with real Terraform and the ASL conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."
tf=$(scripts/install-terraform.sh | tail -n 1)
export TREZA_TERRAFORM="$tf"
cargo test --workspace --all-targets "$@"
