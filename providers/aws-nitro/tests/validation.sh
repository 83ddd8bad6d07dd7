#!/usr/bin/env bash
# Checks the module's preflight rules and user-data template without the AWS
# provider (which cannot be downloaded here):
#
# 1. Copies variables.tf, instance_types.tf and preflight.tf, which use only
#    Terraform's built-in provider, into a scratch module and plans it once per
#    case in cases/: base.tfvars.json plus cases/<name>.tfvars.json.
#    ok-*  must plan; bad-* must fail with the text in cases/<name>.expect
#    among the plan's diagnostics.
# 2. Compares instance_types.tf with the table and parent reservations in
#    crates/core/src/validate.rs.
# 3. Renders templates/user-data.sh.tftpl with a sample locator, checks that
#    the locator is its only templated value and that `bash -n` accepts it
#    (and shellcheck, when installed, on it and the helpers it writes).
#
# Usage: validation.sh [terraform]   (default: $TREZA_TERRAFORM, then PATH)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
module="$(dirname "$here")"
tf="${1:-${TREZA_TERRAFORM:-$(command -v terraform || true)}}"
[ -n "$tf" ] && [ -x "$tf" ] || {
  echo "validation: terraform not found (pass a path, set TREZA_TERRAFORM or put it on PATH)" >&2
  exit 2
}
command -v jq >/dev/null || {
  echo "validation: jq is required" >&2
  exit 2
}

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
: >"$scratch/empty.tfrc"
export TF_CLI_CONFIG_FILE="$scratch/empty.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

work="$scratch/module"
mkdir -p "$work"
cp "$module/variables.tf" "$module/instance_types.tf" "$module/preflight.tf" "$work/"
printf 'terraform {\n  required_version = ">= 1.5.0"\n}\n' >"$work/versions.tf"
(cd "$work" && "$tf" init -input=false -no-color >/dev/null)

failures=0
count=0
fail() {
  echo "FAIL $1: $2" >&2
  failures=$((failures + 1))
}

for case_file in "$here"/cases/*.tfvars.json; do
  name="$(basename "$case_file" .tfvars.json)"
  count=$((count + 1))
  out="$scratch/$name.json"
  set +e
  (cd "$work" && "$tf" plan -input=false -no-color -json -lock=false -refresh=false \
    -var-file="$here/base.tfvars.json" -var-file="$case_file") >"$out" 2>"$scratch/$name.stderr"
  rc=$?
  set -e
  # Every diagnostic's summary and detail, one per line.
  diagnostics="$(jq -r 'select(.type == "diagnostic") | .diagnostic | "\(.severity): \(.summary): \(.detail)"' "$out" 2>/dev/null || true)"
  case "$name" in
    ok-*)
      if [ "$rc" -ne 0 ]; then
        fail "$name" "plan failed (exit $rc): $diagnostics $(cat "$scratch/$name.stderr")"
      fi
      ;;
    bad-*)
      expect_file="$here/cases/$name.expect"
      if [ ! -f "$expect_file" ]; then
        fail "$name" "missing $expect_file"
        continue
      fi
      expected="$(cat "$expect_file")"
      if [ "$rc" -eq 0 ]; then
        fail "$name" "plan succeeded, expected an error containing: $expected"
      elif ! grep -qF -- "$expected" <<<"$diagnostics"; then
        fail "$name" "error does not contain '$expected'; got: $diagnostics $(cat "$scratch/$name.stderr")"
      fi
      ;;
    *) fail "$name" "case names start with ok- or bad-" ;;
  esac
done

# The instance-type table and parent reservations match core's.
count=$((count + 1))
core="$module/../../crates/core/src/validate.rs"
if [ -f "$core" ]; then
  core_rows="$(sed -nE 's/^ *it\("([^"]+)", ([0-9]+), ([0-9]+)\),.*/\1 \2 \3/p' "$core" |
    awk '{ print $1, $2, $3 * 1024 }' | sort)"
  module_rows="$(sed -nE 's/^ *"([^"]+)" *= *\{ *vcpus *= *([0-9]+), *memory_mib *= *([0-9]+) *\}.*/\1 \2 \3/p' \
    "$module/instance_types.tf" | sort)"
  [ -n "$core_rows" ] && [ "$core_rows" = "$module_rows" ] ||
    fail "instance-types" "instance_types.tf differs from INSTANCE_TYPES in crates/core/src/validate.rs: $(diff <(echo "$core_rows") <(echo "$module_rows") | tr '\n' ' ')"
  for pair in "PARENT_MIN_VCPUS parent_min_vcpus" "PARENT_RESERVED_MEMORY_MIB parent_reserved_memory_mib"; do
    read -r rust_name tf_name <<<"$pair"
    rust_value="$(sed -nE "s/^pub const $rust_name: u32 = ([0-9]+);/\1/p" "$core")"
    tf_value="$(sed -nE "s/^ *$tf_name *= *([0-9]+)/\1/p" "$module/instance_types.tf")"
    [ -n "$rust_value" ] && [ "$rust_value" = "$tf_value" ] ||
      fail "instance-types" "$tf_name is '$tf_value' but core's $rust_name is '$rust_value'"
  done
else
  echo "validation: $core not found, skipping the table comparison" >&2
fi

# The user-data template: one templated value, valid bash.
count=$((count + 1))
template="$module/templates/user-data.sh.tftpl"
# `$${` and `%%{` are escaped literals; every other `${...}` or `%{...}` must
# be the locator, which must appear exactly once.
# shellcheck disable=SC2016 # '${locator}' is the literal template text.
stray="$(grep -oE '(^|[^$%])[$%]\{[^}]*\}' "$template" | sed -E 's/^[^$%]//' | grep -vxF '${locator}' || true)"
[ -z "$stray" ] || fail "user-data" "template interpolates more than the locator: $stray"
# shellcheck disable=SC2016 # as above
uses="$(grep -oF '${locator}' "$template" | wc -l)"
[ "$uses" -eq 1 ] || fail "user-data" "template must interpolate \${locator} exactly once, found $uses"
render="$scratch/render"
mkdir -p "$render"
cp "$template" "$render/t.tftpl"
cat >"$render/main.tf" <<'HCL'
output "user_data" {
  value = templatefile("${path.module}/t.tftpl", { locator = base64encode("{\"enclave_id\":\"enc_1\"}") })
}
HCL
(cd "$render" && "$tf" init -input=false -no-color >/dev/null && "$tf" apply -auto-approve -input=false -no-color >/dev/null &&
  "$tf" output -raw user_data >"$render/user-data.sh")
if ! bash -n "$render/user-data.sh"; then
  fail "user-data" "rendered script is not valid bash"
fi
size="$(wc -c <"$render/user-data.sh")"
# EC2 accepts at most 16 KiB of user data.
[ "$size" -lt 16384 ] || fail "user-data" "rendered script is $size bytes, EC2 allows 16384"
if command -v shellcheck >/dev/null; then
  # The helper scripts the bootstrap writes (quoted `<<'SH'` heredocs) too.
  awk -v dir="$render" '/<<.SH.$/ { n++; out = dir "/helper" n ".sh"; next } /^SH$/ { out = "" } out { print > out }' \
    "$render/user-data.sh"
  for script in "$render/user-data.sh" "$render"/helper*.sh; do
    shellcheck --shell=bash --severity=warning "$script" ||
      fail "user-data" "shellcheck reported problems in $(basename "$script")"
  done
else
  echo "validation: shellcheck not found, skipping the lint of the user data" >&2
fi

if [ "$failures" -ne 0 ]; then
  echo "validation: $failures of $count checks failed" >&2
  exit 1
fi
echo "validation: $count checks passed"
