# Sourced by the SDK tests (sh): installs the SDK alone (meson's 'devel'
# tag) from build dir $1 into $work/root, as a plugin author's machine gets
# it, and points pkg-config at it. Sets `pcfile`. Needs `work` set.
# --destdir keeps the prefix recorded in blade-plugin.pc; pkg-config's
# sysroot maps it back into the temporary tree.
install_sdk() {
  meson install -C "$1" --no-rebuild --tags devel --destdir "$work/root" >"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; exit 1; }
  pcfile=$(find "$work/root" -name blade-plugin.pc | head -n 1)
  [ -n "$pcfile" ] || { echo "FAIL: blade-plugin.pc was not installed"; exit 1; }
  PKG_CONFIG_PATH="$(dirname "$pcfile")"
  PKG_CONFIG_SYSROOT_DIR="$work/root"
  export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
}
