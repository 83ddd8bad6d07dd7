#!/usr/bin/env bash
# Fuzzes treza-asl's definition parser, JsonPath evaluator and intrinsic
# functions, one target after another.
#
#   scripts/fuzz-asl.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Defaults: 600 seconds each, targets definition json_path intrinsic.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain the
# nightly-only flags are unlocked with RUSTC_BOOTSTRAP=1. Seeds come from the
# shared conformance suite; crashes land in crates/asl/fuzz/artifacts/<target>/.
set -euo pipefail

secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(definition json_path intrinsic)

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/crates/asl/fuzz"
cases="${ASL_CONFORMANCE_CASES:-$root/../shared/conformance/asl/cases}"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz

# Seed corpora: whole definitions, and every JsonPath / intrinsic call found in them.
python3 - "$cases" "$fuzz/corpus" <<'PY'
import hashlib, json, os, sys
cases, out = sys.argv[1], sys.argv[2]
def put(target, text):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(text.encode()).hexdigest()
    with open(os.path.join(d, name), "w") as f:
        f.write(text)
def strings(v):
    if isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
    elif isinstance(v, str):
        yield v
if os.path.isdir(cases):
    for case in sorted(os.listdir(cases)):
        try:
            text = open(os.path.join(cases, case, "definition.json")).read()
            doc = open(os.path.join(cases, case, "input.json")).read()
        except OSError:
            continue
        put("definition", text)
        for s in strings(json.loads(text)):
            if s.startswith("States."):
                put("intrinsic", s + "\n" + doc)
            elif s.startswith("$"):
                put("json_path", s + "\n" + doc)
for t in ("definition", "json_path", "intrinsic"):
    os.makedirs(os.path.join(out, t), exist_ok=True)
PY

cd "$fuzz"
status=0
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${secs}s"
    # -s none: the address sanitizer needs a nightly std; overflow checks and
    # debug assertions stay on, so arithmetic overflow and panics are caught.
    RUSTC_BOOTSTRAP=1 cargo fuzz run -s none "$t" -- \
        -max_total_time="$secs" -max_len=8192 -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 || status=$?
done
exit $status
