#!/bin/sh
# blade-plugin.pc as installed must state the ABI version the installed
# header defines (meson reads the header at configure time; this proves it).
#   $1 = the main build dir
set -eu
build_dir=$1

work=$(mktemp -d /tmp/blade-pc-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

. "$(dirname "$0")/../support/install_sdk.sh"
install_sdk "$build_dir"
header=$(find "$work/root" -path '*/blade/plugin.h' | head -n 1)
[ -n "$header" ] || { echo "FAIL: blade/plugin.h was not installed"; exit 1; }

status=0
for part in major minor; do
  upper=$(echo "$part" | tr a-z A-Z)
  in_header=$(sed -n "s/^#define BLADE_PLUGIN_ABI_${upper} \([0-9][0-9]*\)\$/\1/p" "$header")
  in_pc=$(pkg-config --variable="abi_$part" blade-plugin)
  echo "abi_$part: header $in_header, pkg-config $in_pc"
  if [ -z "$in_header" ] || [ "$in_header" != "$in_pc" ]; then
    echo "FAIL: abi_$part of blade-plugin.pc differs from the installed header"
    status=1
  fi
done
exit $status
