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

cat <<MSG
bladed on http://127.0.0.1:$port  (token in var/api-token; Ctrl-C stops it)
try:
  curl -s http://127.0.0.1:$port/v1/health
  curl -s -H 'X-Api-Token: $BLADE_API_TOKEN' http://127.0.0.1:$port/v1/plugins
  curl -s -H 'X-Api-Token: $BLADE_API_TOKEN' -H 'Content-Type: application/json' \\
    -d '{"target":"example","action":"marker","flags":{"path":"/tmp/blade-marker"},"timeout":60}' \\
    http://127.0.0.1:$port/v1/experiments

MSG
exec "$build/server/bladed" --bind 127.0.0.1 --port "$port" \
  --plugin-dir "$build/plugins" --state-dir var/state
