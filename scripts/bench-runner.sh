#!/usr/bin/env bash
# Runner overhead benchmark: deploy + destroy of providers/local through the
# treza-runner binary versus bare terraform commands, alternating, in one run.
# Prints median and p90 of both and the overhead (runner/bare - 1).
#   BENCH_ITERATIONS=N  cycles per side (default 7, at least 5)
# Needs terraform (see scripts/install-terraform.sh) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v terraform >/dev/null 2>&1 && [ -z "${TREZA_TERRAFORM:-}" ]; then
  TREZA_TERRAFORM="$(bash scripts/install-terraform.sh | tail -n 1)"
  export TREZA_TERRAFORM
fi
echo "nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
exec cargo bench -p treza-runner --bench runner -- "$@"
