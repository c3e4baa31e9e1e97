#!/usr/bin/env bash
# Install oathbridge: binary, D-Bus activation file, systemd user unit, udev rules,
# GNOME Shell search provider, KRunner plugin and the launcher entry.
#
#   bash scripts/install.sh            # system-wide under /usr/local (sudo), all users
#   bash scripts/install.sh --user     # this user only, under ~/.local (no root)
#
# Per-user installs cannot add udev rules or the GNOME search provider (GNOME reads
# providers from system data dirs only); those steps are skipped with a note.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

mode=system
[ "${1:-}" = "--user" ] && mode=user

cargo build --release --quiet
BIN_SRC=target/release/oathbridge

if [ "$mode" = user ]; then
  PREFIX=$HOME/.local
  DATA=${XDG_DATA_HOME:-$HOME/.local/share}
  UNIT_DIR=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user
  SUDO=()
else
  PREFIX=/usr/local
  DATA=/usr/local/share
  UNIT_DIR=/etc/systemd/user
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
fi
BIN=$PREFIX/bin/oathbridge

put() { # put SRC DEST [MODE]
  "${SUDO[@]}" install -D -m "${3:-0644}" "$1" "$2"
  echo "installed $2"
}

put "$BIN_SRC" "$BIN" 0755
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^Exec=.*|Exec=$BIN daemon|" dbus/io.github.oathbridge.OathBridge1.service > "$tmp/activation"
put "$tmp/activation" "$DATA/dbus-1/services/io.github.oathbridge.OathBridge1.service"
sed "s|^ExecStart=.*|ExecStart=$BIN daemon|" systemd/oathbridge.service > "$tmp/unit"
put "$tmp/unit" "$UNIT_DIR/oathbridge.service"
for xml in dbus/io.github.oathbridge.OathBridge1.*.xml; do
  put "$xml" "$DATA/dbus-1/interfaces/$(basename "$xml")"
done
sed "s|^Exec=oathbridge|Exec=$BIN|" desktop/io.github.oathbridge.OathBridge1.desktop > "$tmp/desktop"
put "$tmp/desktop" "$DATA/applications/io.github.oathbridge.OathBridge1.desktop"
put desktop/oathbridge-krunner.desktop "$DATA/krunner/dbusplugins/oathbridge.desktop"

if [ "$mode" = system ]; then
  put dbus/io.github.oathbridge.OathBridge1.search-provider.ini \
    "$DATA/gnome-shell/search-providers/io.github.oathbridge.OathBridge1.search-provider.ini"
  put udev/69-oathbridge.rules /etc/udev/rules.d/69-oathbridge.rules
  "${SUDO[@]}" udevadm control --reload 2>/dev/null || true
else
  echo "note: skipped udev rules and the GNOME search provider (they need a system-wide install)"
fi

if command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; then
  systemctl --user daemon-reload
  systemctl --user enable oathbridge.service >/dev/null 2>&1 || true
  echo "enabled oathbridge.service (starts on D-Bus activation and when a smart card is plugged in)"
fi
echo "done: try 'oathbridge devices' and 'busctl --user call io.github.oathbridge.OathBridge1 /io/github/oathbridge/OathBridge1 io.github.oathbridge.OathBridge1.Manager GetCodes a{sv} 0'"
