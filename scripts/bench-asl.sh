#!/usr/bin/env bash
# treza-asl benchmarks in one run:
#   1. moto's Step Functions engine on the conformance cases it handles
#      (crates/asl/benches/moto_compare.py; installs moto[server] if missing),
#   2. the in-memory engine bench (Pass chain, Pass+Choice loop, 10,000-item
#      Map) plus the same conformance cases in-process, with the ratio to moto,
#   3. durable transitions/s through the SQLite journal (crates/treza/benches/asl.rs).
#
#   scripts/bench-asl.sh [REPS]      # REPS: runs per conformance case (default 2)
#
# Set SKIP_MOTO=1 to run only the Rust benches.
set -euo pipefail
reps="${1:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cases="${ASL_CONFORMANCE_CASES:-$root/../shared/conformance/asl/cases}"
out="$root/target/asl-bench"
mkdir -p "$out"
cd "$root"

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
if [ "${SKIP_MOTO:-0}" != 1 ]; then
    python3 -m pip show moto >/dev/null 2>&1 || python3 -m pip install -q 'moto[server]'
    python3 crates/asl/benches/moto_compare.py --cases "$cases" --reps "$reps" --out "$out/moto.json" 2>"$out/moto-skips.log"
    export ASL_BENCH_MOTO="$out/moto.json"
fi
cargo bench -p treza-asl --bench engine
cargo bench -p treza --bench asl
