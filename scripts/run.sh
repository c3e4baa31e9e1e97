#!/usr/bin/env bash
# Build oathbridge and serve codes from the connected OATH key — or, when none is
# plugged in, from a virtual key (the software card, attached to pcscd through vpcd).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
packages=(pcscd vsmartcard-vpcd libpcsclite-dev pkg-config)
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
    $SUDO pcscd
    sleep 0.5
  fi
fi

if "$BIN" devices >/dev/null 2>&1; then
  echo "==> hardware key found"
  "$BIN" devices
  exec "$BIN" code
fi

STATE=${XDG_DATA_HOME:-$HOME/.local/share}/oathbridge/virtual-key.json
mkdir -p "$(dirname "$STATE")"
echo "==> no OATH key plugged in: starting the virtual key ($STATE)"
"$BIN" emulate --vpcd 127.0.0.1:35963 --state "$STATE" &
EMULATOR=$!
trap 'kill $EMULATOR 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  "$BIN" --reader "Virtual PCD 00 00" devices >/dev/null 2>&1 && break
  sleep 0.1
done
if ! "$BIN" --reader "Virtual PCD 00 00" devices >/dev/null 2>&1; then
  echo "pcscd has no 'Virtual PCD' reader: it started before vsmartcard-vpcd was installed." >&2
  echo "Restart it (sudo systemctl restart pcscd, or kill and start pcscd) and run this again." >&2
  exit 5
fi
if [ -z "$("$BIN" --reader "Virtual PCD 00 00" list)" ]; then
  echo "==> adding a demo account (RFC 6238 test seed) to the virtual key"
  echo "otpauth://totp/Demo:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Demo" |
    "$BIN" --reader "Virtual PCD 00 00" add --from -
fi
"$BIN" --reader "Virtual PCD 00 00" devices
echo "==> codes (the virtual key stays plugged in until Ctrl-C)"
while true; do
  "$BIN" --reader "Virtual PCD 00 00" code
  sleep $((30 - $(date +%s) % 30))
  echo
done
