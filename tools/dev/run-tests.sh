#!/bin/sh
# Runs every test of the build dir $1 and ends with one line:
# "N passed, N failed, N skipped". Exits non-zero if any test failed.
set -u
build=$1
status=0
meson test -C "$build" --print-errorlogs --num-processes 2 || status=$?

log="$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
  # One JSON object per test; count results by kind.
  passed=$(grep -c -E '"result": "(OK|EXPECTEDFAIL)"' "$log" || true)
  failed=$(grep -c -E '"result": "(FAIL|TIMEOUT|UNEXPECTEDPASS|ERROR)"' "$log" || true)
  skipped=$(grep -c -E '"result": "SKIP"' "$log" || true)
else
  passed=0 failed=1 skipped=0
  status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
