#!/usr/bin/env bash
# The test suite: installs the tools the tests need (Terraform), then runs
# every test of the workspace, including the end-to-end tests that drive the
# real server with real Terraform and the ASL conformance suite.
set -euo pipefail
cd "$(dirname "$0")/.."
tf=$(scripts/install-terraform.sh | tail -n 1)
export TREZA_TERRAFORM="$tf"
# The ASL conformance suite first, uncaptured, so its counts (passed,
# skipped with the reasons in crates/asl/tests/conformance-skips.txt, failed)
# show in the log.
cargo test -p treza-asl --test conformance -- --nocapture
cargo test --workspace --all-targets "$@"
