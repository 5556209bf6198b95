#!/bin/sh
# Compiles one source file (syntax and templates only, no object) and checks
# the outcome, so a compile-fail test fails both when its file stops failing
# and when it fails for another reason than the one it is about.
#   $1 = the source file
#   $2 = the static_assert message the compiler must report, as the file's
#        only error; "" when the file must compile cleanly
#   the rest = the compiler and its flags
set -u
src=$1
expected=$2
shift 2
err=$(mktemp /tmp/blade-compile-fail-XXXXXX)
trap 'rm -f "$err"' EXIT

if "$@" -fsyntax-only "$src" 2>"$err"; then status=0; else status=$?; fi

if [ -z "$expected" ]; then
  if [ "$status" -eq 0 ]; then echo "$src compiles"; exit 0; fi
  cat "$err"
  echo "FAIL: $src must compile (exit $status)"
  exit 1
fi
if [ "$status" -eq 0 ]; then
  echo "FAIL: $src compiled, but must fail with: $expected"
  exit 1
fi
errors=$(grep -c 'error:' "$err")
if ! grep -qF -- "static assertion failed: $expected" "$err"; then
  cat "$err"
  echo "FAIL: $src failed, but not with: $expected"
  exit 1
fi
if [ "$errors" -ne 1 ]; then
  cat "$err"
  echo "FAIL: $src reports $errors errors; the mistake must give exactly one"
  exit 1
fi
echo "$src fails with: $expected"
