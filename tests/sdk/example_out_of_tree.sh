#!/bin/sh
# The SDK as a third party gets it: install the SDK alone into a temporary
# prefix, build one example plugin as its own meson project against it via
# pkg-config (warnings are errors), run the example's own unit tests (which
# use blade/plugin_test.hpp), check the plugin exports only its entry
# symbol, then have the daemon's loader check it.
#   $1 = the main build dir, $2 = the example's source dir, $3 = bladed,
#   $4 = the plugin file the example builds (e.g. example.so),
#   $5 = a "target action" the loaded plugin must list (e.g. "example marker")
set -eu
build_dir=$1
example_src=$2
bladed=$3
plugin_file=$4
item=$5

work=$(mktemp -d /tmp/blade-sdk-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

. "$(dirname "$0")/../support/install_sdk.sh"
install_sdk "$build_dir"
# Nothing but the SDK may be installed with the tag.
if find "$work/root" -name '*.so' | grep -q .; then echo "SDK install contains a .so"; exit 1; fi
find "$work/root" -name plugin_test.hpp | grep -q . || { echo "blade/plugin_test.hpp was not installed"; exit 1; }

echo "installed SDK: $(pkg-config --modversion blade-plugin), cflags: $(pkg-config --cflags blade-plugin)"
meson setup -Dwerror=true "$work/build" "$example_src" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
meson compile -C "$work/build" >"$work/compile.log" 2>&1 || { cat "$work/compile.log"; exit 1; }
plugin="$work/build/$plugin_file"
[ -f "$plugin" ] || { echo "$plugin_file was not built"; exit 1; }

# The example's own unit tests; a project that registers none fails here.
meson test -C "$work/build" --verbose >"$work/test.log" 2>&1 || { cat "$work/test.log"; exit 1; }
passed=$(sed -n 's/^Ok: *\([0-9][0-9]*\).*/\1/p' "$work/test.log")
grep -E '^(ok |FAILED |[0-9]+ test cases|\[doctest\] test cases| *[0-9]+/[0-9]+ )' "$work/test.log" || true
[ "${passed:-0}" -ge 1 ] || { cat "$work/test.log"; echo "the example ran no unit test"; exit 1; }

# The version script leaves exactly one exported symbol.
exported=$(nm -D --defined-only "$plugin" | awk '{print $3}' | grep -v '^$' | sort | tr '\n' ' ')
echo "exported: $exported"
[ "$exported" = "blade_plugin_entry_v1 " ] || { echo "plugin exports more than its entry symbol"; exit 1; }

chmod 0755 "$plugin"
out=$("$bladed" check-plugin "$plugin") || { echo "$out"; echo "loader refused the example"; exit 1; }
echo "$out"
echo "$out" | grep -q '"status": "loaded"' || { echo "not loaded"; exit 1; }
echo "$out" | grep -q "\"$item\"" || { echo "the loaded plugin does not list '$item'"; exit 1; }
echo "example $(basename "$example_src") built out of tree, its tests passed, and it loaded"
