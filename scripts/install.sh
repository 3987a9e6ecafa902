#!/bin/sh
# Installs cynic: the binary, the shipped plugins, the plugin header and a pkg-config file.
#
#     scripts/install.sh [PREFIX]        # default PREFIX: /usr/local
#
#   PREFIX/bin/cynic
#   PREFIX/lib/cynic/plugins/*.so      searched by PREFIX/bin/cynic before anything else
#   PREFIX/include/cynic/plugin.h
#   PREFIX/lib/pkgconfig/cynic-plugin.pc
#
# so that a plugin author builds with
#     cc $(pkg-config --cflags cynic-plugin) -shared -fPIC -o my.so my.c
# It builds in release mode first (CYNIC_CONFIGURATION=debug installs a debug build instead;
# CYNIC_BIN_PATH=DIR installs what is already built in DIR, without building).
# The binary links the Swift runtime of the toolchain that built it: install on the same machine.
set -eu
prefix="${1:-${PREFIX:-/usr/local}}"
configuration="${CYNIC_CONFIGURATION:-release}"
cd "$(dirname "$0")/.."

if [ -n "${CYNIC_BIN_PATH:-}" ]; then
    bin="$CYNIC_BIN_PATH"
else
    swift build -c "$configuration"
    bin="$(swift build -c "$configuration" --show-bin-path)"
fi

install -d "$prefix/bin" "$prefix/lib/cynic/plugins" "$prefix/include/cynic" "$prefix/lib/pkgconfig"
install -m 755 "$bin/cynic" "$prefix/bin/cynic"
for plugin in "$bin"/libcynic-plugin-*.so; do
    name="$(basename "$plugin")"
    # Written beside, then renamed: a running cynic watching the folder never loads half a file.
    install -m 644 "$plugin" "$prefix/lib/cynic/plugins/.${name#libcynic-plugin-}.tmp"
    mv -f "$prefix/lib/cynic/plugins/.${name#libcynic-plugin-}.tmp" "$prefix/lib/cynic/plugins/${name#libcynic-plugin-}"
done
install -m 644 include/cynic/plugin.h "$prefix/include/cynic/plugin.h"
cat > "$prefix/lib/pkgconfig/cynic-plugin.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
plugindir=\${prefix}/lib/cynic/plugins

Name: cynic-plugin
Description: The C ABI of cynic behaviour plugins (header only)
Version: 1
Cflags: -I\${includedir}
PC
echo "installed cynic in $prefix (plugins: $prefix/lib/cynic/plugins)"
