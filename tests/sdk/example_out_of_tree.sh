#!/bin/sh
# The SDK as a third party gets it: install the SDK alone into a temporary
# prefix, build the example plugin as its own meson project against it via
# pkg-config, then have the daemon's loader check the result.
#   $1 = the main build dir, $2 = the example's source dir, $3 = bladed
set -eu
build_dir=$1
example_src=$2
bladed=$3

work=$(mktemp -d /tmp/blade-sdk-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

# --destdir keeps the prefix recorded in blade-plugin.pc; pkg-config's
# sysroot maps it back into the temporary tree.
meson install -C "$build_dir" --no-rebuild --tags devel --destdir "$work/root" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
pcfile=$(find "$work/root" -name blade-plugin.pc | head -n 1)
[ -n "$pcfile" ] || { echo "blade-plugin.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pcfile")"
export PKG_CONFIG_SYSROOT_DIR="$work/root"
# Nothing but the SDK may be installed with the tag.
if find "$work/root" -name '*.so' | grep -q .; then echo "SDK install contains a .so"; exit 1; fi

echo "installed SDK: $(pkg-config --modversion blade-plugin), cflags: $(pkg-config --cflags blade-plugin)"
meson setup "$work/build" "$example_src" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
meson compile -C "$work/build" >"$work/compile.log" 2>&1 || { cat "$work/compile.log"; exit 1; }
plugin="$work/build/example.so"
[ -f "$plugin" ] || { echo "example.so was not built"; exit 1; }

# The version script leaves exactly one exported symbol.
exported=$(nm -D --defined-only "$plugin" | awk '{print $3}' | grep -v '^$' | sort | tr '\n' ' ')
echo "exported: $exported"
[ "$exported" = "blade_plugin_entry_v1 " ] || { echo "plugin exports more than its entry symbol"; exit 1; }

chmod 0755 "$plugin"
out=$("$bladed" check-plugin "$plugin") || { echo "$out"; echo "loader refused the example"; exit 1; }
echo "$out"
echo "$out" | grep -q '"status": "loaded"'
echo "$out" | grep -q '"example marker"'
echo "example plugin built out of tree and loaded"
