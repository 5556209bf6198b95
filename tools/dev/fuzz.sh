#!/bin/sh
# Builds the fuzz targets (fuzz/, docs/fuzzing.md) in their own clang build
# dir and runs each for a bounded time on its committed seed corpus and
# dictionary, then prints one line per target. Exits non-zero when a target
# crashed, hung, leaked or broke a property; the input is kept in
# $build/fuzz-artifacts/<target>/.
#   tools/dev/fuzz.sh [seconds-per-target]   (default: $FUZZ_SECONDS, else 60)
# FUZZ_TARGETS="durations spec_yaml" runs only those; FUZZ_BUILD names the
# build dir (default build-fuzz).
set -eu
seconds=${1:-${FUZZ_SECONDS:-60}}
build=${FUZZ_BUILD:-build-fuzz}
targets=${FUZZ_TARGETS:-"json_bodies chaosblade_cmd spec_yaml flag_values durations"}

tools/dev/install-deps.sh
tools/dev/install-deps.sh --fuzz
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzz=true
fi
meson compile -C "$build" fuzzers

status=0
summary=""
for target in $targets; do
  # New inputs go to the build dir; the committed seeds are only read.
  work="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts/$target"
  log="$build/fuzz-logs/$target.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  dict=""
  [ -f "fuzz/dict/$target.dict" ] && dict="-dict=fuzz/dict/$target.dict"
  echo "fuzzing $target for ${seconds}s (log: $log)"
  result=ok
  # shellcheck disable=SC2086 # $dict is empty or one word
  # -max_len: the corpus holds one 160 KB reproducer (deep JSON nesting),
  # which would otherwise raise the length of every generated input.
  "$build/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" $dict "$work" "fuzz/corpus/$target" \
    >"$log" 2>&1 || { result="FAILED: $(ls -t "$artifacts" | head -1)"; status=1; }
  # The last status line carries the coverage: "#N ... cov: C ft: F corp: ...".
  coverage=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o -E 'cov: [0-9]+ ft: [0-9]+' || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  line="$target: ${runs:-?} runs, ${speed:-?} exec/s, ${coverage:-no coverage line}, $result"
  echo "$line"
  summary="$summary$line
"
done
printf '\n%s' "$summary"
exit "$status"
