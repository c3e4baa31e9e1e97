#!/usr/bin/env bash
# Build oathbridge and run the daemon: it serves codes on the D-Bus session bus
# (io.github.oathbridge.OathBridge1) from the keys pcscd sees — or, when no OATH key is
# plugged in, from a virtual key kept in ~/.local/share/oathbridge/virtual-key.json.
# Without a session bus (a server, a container), a private one is started.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
packages=(pcscd libpcsclite-dev libudev-dev pkg-config dbus-daemon systemd)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "==> building"
cargo build --release --quiet
BIN=$PWD/target/release/oathbridge

# pcscd: use the running one; else socket activation; else start it ourselves.
if [ ! -S /run/pcscd/pcscd.comm ]; then
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl start pcscd.socket
  else
    echo "==> starting pcscd"
    $SUDO mkdir -p /run/pcscd
    $SUDO pcscd
    sleep 0.5
  fi
fi

cleanup=()
trap 'for pid in "${cleanup[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  dir=${XDG_RUNTIME_DIR:-/tmp}/oathbridge-bus-$(id -u)
  mkdir -p "$dir"
  bus_pid=$(dbus-daemon --session --address="unix:path=$dir/bus.sock" --fork --nopidfile --print-pid=1)
  cleanup+=("$bus_pid")
  export DBUS_SESSION_BUS_ADDRESS=unix:path=$dir/bus.sock
  echo "==> no session bus: started one at $DBUS_SESSION_BUS_ADDRESS"
fi

args=(daemon)
if "$BIN" --direct devices >/dev/null 2>&1; then
  echo "==> hardware key found"
else
  STATE=${XDG_DATA_HOME:-$HOME/.local/share}/oathbridge/virtual-key.json
  mkdir -p "$(dirname "$STATE")"
  echo "==> no OATH key plugged in: serving the virtual key $STATE"
  args+=(--virtual-key "$STATE")
fi
"$BIN" "${args[@]}" &
daemon=$!
cleanup+=("$daemon")

call() { busctl --user call io.github.oathbridge.OathBridge1 /io/github/oathbridge/OathBridge1 \
  io.github.oathbridge.OathBridge1.Manager "$@"; }
for _ in $(seq 100); do call GetCodes 'a{sv}' 0 >/dev/null 2>&1 && break; sleep 0.1; done
if [ "$(call GetCodes 'a{sv}' 0)" = "aa{sv} 0" ] && [ ${#args[@]} -gt 1 ]; then
  echo "==> adding a demo account (RFC 6238 test seed) to the virtual key"
  call AddAccount 'a{sv}a{sv}' 1 uri s \
    'otpauth://totp/Demo:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Demo' 0 >/dev/null
fi
echo "==> serving io.github.oathbridge.OathBridge1 (Ctrl-C to stop). Codes now, through the daemon:"
"$BIN" code
echo "    try: DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS busctl --user call io.github.oathbridge.OathBridge1 /io/github/oathbridge/OathBridge1 io.github.oathbridge.OathBridge1.Manager GetCodes a{sv} 0"
wait "$daemon"
