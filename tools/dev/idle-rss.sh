#!/bin/sh
# Starts bladed from the build dir $1 with every plugin built there, waits
# $2 seconds (default 5), and prints its resident memory: the totals of
# /proc/<pid>/status and the mappings holding the most of it. The same
# figure http_bench prints as "fresh idle", with the breakdown behind it.
set -eu
build=$(cd "$1" && pwd)
wait=${2:-5}
dir=$(mktemp -d "${TMPDIR:-/tmp}/blade-idle-rss.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Copies, so the build's umask cannot make bladed refuse them.
mkdir -p "$dir/plugins"
cp "$build"/plugins/*.so "$dir/plugins/"
[ -f "$build/plugins/blade-cri-helper" ] && cp "$build/plugins/blade-cri-helper" "$dir/plugins/"
chmod 755 "$dir"/plugins/*

BLADE_API_TOKEN=idle-rss-token-0123456789abcdef0123 "$build/server/bladed" --bind 127.0.0.1 \
  --port 0 --port-file "$dir/port" --plugin-dir "$dir/plugins" --no-install-plugin-dir \
  --state-dir "$dir/state" --log-level warn >"$dir/log" 2>&1 &
pid=$!
sleep "$wait"
if ! kill -0 "$pid" 2>/dev/null; then
  cat "$dir/log" >&2
  exit 1
fi
echo "bladed with $(ls "$dir/plugins" | grep -c '\.so$') plugin file(s), after ${wait} s:"
grep -E '^(VmRSS|RssAnon|RssFile|Threads):' "/proc/$pid/status"
echo "largest mappings (KiB resident, of which anonymous):"
awk '/^[0-9a-f]+-[0-9a-f]+ /{name = ($6 == "" ? "[anon]" : $6)}
     /^Rss:/{rss[name] += $2}
     /^Anonymous:/{anon[name] += $2}
     END{for (n in rss) if (rss[n] > 0) printf "%8d %8d  %s\n", rss[n], anon[n], n}' \
  "/proc/$pid/smaps" | sort -rn | head -15
