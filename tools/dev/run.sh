#!/bin/sh
# Starts bladed from the build dir $1 with development defaults: state under
# ./var/, plugins from the build tree, a token generated once and kept in
# ./var/api-token. Ctrl-C stops it.
set -eu
build=$1
port=${BLADE_PORT:-9526}
mkdir -p var

if [ ! -s var/api-token ]; then
  (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >var/api-token)
fi
BLADE_API_TOKEN=$(cat var/api-token)
export BLADE_API_TOKEN

# bladed refuses group/world-writable plugins; a build under umask 002
# produces them, so tighten the ones we built.
chmod go-w "$build"/plugins/*.so 2>/dev/null || true

blade=$(cd "$build" && pwd)/tools/blade/blade
cat <<MSG
bladed on http://127.0.0.1:$port  (token in var/api-token; Ctrl-C stops it)
in another shell, from $(pwd):
  export BLADE_API_TOKEN=\$(cat var/api-token) BLADE_ENDPOINT=http://127.0.0.1:$port
  export BLADE_PLUGIN_DIR=$(cd "$build" && pwd)/plugins    # help from these when bladed is down
  alias blade=$blade
  blade plugins
  uid=\$(blade create example marker --path /tmp/blade-marker --timeout 5m)
  blade status                      # the active experiments (--all: the history too)
  blade destroy \$uid
  blade create cpu load --help
or with curl:
  curl -s http://127.0.0.1:$port/v1/health
  curl -s -H "X-Api-Token: \$BLADE_API_TOKEN" http://127.0.0.1:$port/v1/experiments

MSG
# --no-install-plugin-dir: the build's plugins only, not also the copies
# of the same plugins an earlier `meson install` put in the install dir
# (each would be refused as a clash, an error line at every start).
exec "$build/server/bladed" --bind 127.0.0.1 --port "$port" \
  --plugin-dir "$build/plugins" --no-install-plugin-dir --state-dir var/state
