#!/bin/sh
# Installs cynic: the binary, the shipped plugins, the plugin header and a pkg-config file.
#
#     scripts/install.sh [PREFIX]        # default PREFIX: /usr/local
#
#   PREFIX/bin/cynic
#   PREFIX/lib/cynic/plugins/*.so      searched by PREFIX/bin/cynic before anything else
#   PREFIX/include/cynic/plugin.h
#   PREFIX/lib/pkgconfig/cynic-plugin.pc
#   PREFIX/share/cynic/plugin-kit/     CynicPluginKit, the package Swift plugins depend on
#   PREFIX/share/man/man1/cynic.1
#   PREFIX/share/bash-completion/completions/cynic, PREFIX/share/zsh/site-functions/_cynic,
#   PREFIX/share/fish/vendor_completions.d/cynic.fish
#
# so that a plugin author builds with
#     cc $(pkg-config --cflags cynic-plugin) -shared -fPIC -o my.so my.c
# and `PREFIX/bin/cynic new-plugin` writes plugins that build against these.
# It builds in release mode first (CYNIC_CONFIGURATION=debug installs a debug build instead;
# CYNIC_BIN_PATH=DIR installs what is already built in DIR, without building cynic).
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
# The pkg-config version is the ABI version, read from the header it describes.
abi="$(sed -n 's/^#define CYNIC_ABI_VERSION \([0-9][0-9]*\)u*$/\1/p' include/cynic/plugin.h)"
[ -n "$abi" ] || { echo "install.sh: no CYNIC_ABI_VERSION in include/cynic/plugin.h" >&2; exit 1; }
cat > "$prefix/lib/pkgconfig/cynic-plugin.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
plugindir=\${prefix}/lib/cynic/plugins

Name: cynic-plugin
Description: The C ABI of cynic behaviour plugins (header only)
Version: $abi
Cflags: -I\${includedir}
PC

# The plugin kit: CynicPluginKit's sources and the header, as a package of their own (its
# manifest is scripts/plugin-kit/Package.swift). Replaced whole: a file an older cynic had and
# this one dropped would otherwise still be compiled.
kit="$prefix/share/cynic/plugin-kit"
rm -rf "$kit"
install -d "$kit/Sources/CynicPluginKit" "$kit/include/cynic"
install -m 644 scripts/plugin-kit/Package.swift "$kit/Package.swift"
install -m 644 Sources/CynicPluginKit/*.swift "$kit/Sources/CynicPluginKit/"
install -m 644 include/cynic/plugin.h "$kit/include/cynic/plugin.h"

# Shell completions, from swift-argument-parser's own generator in the binary itself.
completions_bash="$prefix/share/bash-completion/completions"
completions_zsh="$prefix/share/zsh/site-functions"
completions_fish="$prefix/share/fish/vendor_completions.d"
install -d "$completions_bash" "$completions_zsh" "$completions_fish"
"$prefix/bin/cynic" --generate-completion-script bash > "$completions_bash/cynic"
"$prefix/bin/cynic" --generate-completion-script zsh > "$completions_zsh/_cynic"
"$prefix/bin/cynic" --generate-completion-script fish > "$completions_fish/cynic.fish"

# The manual, from swift-argument-parser's generate-manual: the tool behind its package plugin
# (`swift package generate-manual`), run here on the binary being installed. It is built on its
# own, from the swift-argument-parser checkout SwiftPM resolved for cynic, in a scratch folder of
# its own (.build/generate-manual, kept for the next install): the plugin would rebuild all of
# cynic in the configuration it picks, and could not document what CYNIC_BIN_PATH installs.
parser=.build/checkouts/swift-argument-parser
[ -f "$parser/Package.swift" ] || swift package resolve
swift build --package-path "$parser" --scratch-path .build/generate-manual --product generate-manual >&2
generate_manual="$(swift build --package-path "$parser" --scratch-path .build/generate-manual --show-bin-path)/generate-manual"
install -d "$prefix/share/man/man1"
"$generate_manual" "$prefix/bin/cynic" --output-directory "$prefix/share/man/man1"
echo "installed cynic in $prefix (plugins: $prefix/lib/cynic/plugins)"
