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
if [ "$failed" != 0 ]; then
  # CI shows only the tail of the output: repeat why each failed test failed
  # (its doctest ERROR lines) next to the count.
  python3 - "$log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
        continue
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    why = [l for l in out.splitlines() if "ERROR" in l or "MESSAGE" in l][:8]
    print("FAILED %s (%s): %s" % (t.get("name"), t.get("result"), " | ".join(why)[:1200]))
PY
fi
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
