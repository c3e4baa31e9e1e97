#!/usr/bin/env bash
# How fast and how light `oathbridge daemon` is, against an emulated key behind a private
# pcscd (the test bed's setup: unshare -m, a bind mount on /run/pcscd, the vpcd driver on a
# free port) and a private session bus. Nothing of the user's pcscd, bus, keys or files is
# touched; everything started here is stopped on exit.
#
# Prints:
#   (a) hyperfine: `busctl --user call … GetCodes` through the (warm) daemon vs
#       `ykman oath accounts code` straight to the key, and the ratio;
#   (b) p50/p95 of 1000 cached GetCodes: with busctl in a loop (includes busctl's process
#       start) and, when jeepney is available (it is in the ykman venv), over one
#       in-process D-Bus connection (the daemon's own latency plus the bus);
#   (c) the daemon's RSS (VmRSS, VmHWM);
#   (d) the daemon's CPU time over 10 idle seconds (utime+stime from /proc/PID/stat).
#
#   bash scripts/bench-daemon.sh            # ykman from target/ykman-venv (scripts/test.sh makes it)
#   OATHBRIDGE_YKMAN=/usr/bin/ykman bash scripts/bench-daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."

READER="Virtual PCD 00 00"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
YKMAN=${OATHBRIDGE_YKMAN:-target/ykman-venv/bin/ykman}
BUS_NAME=io.github.oathbridge.OathBridge1
ROOT=/io/github/oathbridge/OathBridge1
MANAGER=io.github.oathbridge.OathBridge1.Manager
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

need_packages=()
command -v hyperfine >/dev/null || need_packages+=(hyperfine)
[ -x /usr/sbin/pcscd ] || command -v pcscd >/dev/null || need_packages+=(pcscd)
[ -e "$VPCD_DRIVER" ] || need_packages+=(vsmartcard-vpcd)
command -v dbus-daemon >/dev/null || need_packages+=(dbus-daemon)
command -v busctl >/dev/null || need_packages+=(systemd)
if [ ${#need_packages[@]} -gt 0 ]; then
    echo "bench: installing ${need_packages[*]}" >&2
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi
[ -x "$YKMAN" ] || { echo "bench: no ykman at $YKMAN (set OATHBRIDGE_YKMAN)" >&2; exit 1; }
PCSCD=$(command -v pcscd || echo /usr/sbin/pcscd)
# The Python next to ykman (a venv) has jeepney, a pure-Python D-Bus client.
PYTHON=$(dirname "$YKMAN")/python
[ -x "$PYTHON" ] || PYTHON=python3

cargo build --release --quiet
OATHBRIDGE=$PWD/target/release/oathbridge

DIR=$(mktemp -d /tmp/oathbridge-bench-daemon-XXXXXX)
PCSCD_PID=""
CARD_PID=""
DBUS_PID=""
DAEMON_PID=""
cleanup() {
    for pid in $DAEMON_PID $CARD_PID $DBUS_PID $PCSCD_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $DAEMON_PID $CARD_PID $DBUS_PID $PCSCD_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/run" "$DIR/reader.conf.d" "$DIR/home" "$DIR/xdg-runtime"
chmod 700 "$DIR/xdg-runtime"
$SUDO mkdir -p /run/pcscd   # the bind-mount target; pcscd always binds /run/pcscd/pcscd.comm

# A free vpcd port: nothing listening on it now.
while :; do
    PORT=$((20000 + RANDOM % 40000))
    ss -ltn | grep -q ":$PORT " || break
done
cat >"$DIR/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD"
DEVICENAME   /dev/null:$PORT
LIBPATH      $VPCD_DRIVER
CHANNELID    $PORT
EOF

map_root=()
[ "$(id -u)" -eq 0 ] || map_root=(--map-root-user)
# unshare and sh exec, so $! is pcscd itself.
unshare "${map_root[@]}" -m --propagation private sh -c \
    'mount --bind "$0/run" /run/pcscd && exec "$@"' "$DIR" \
    "$PCSCD" --foreground -c "$DIR/reader.conf.d" >"$DIR/pcscd.log" 2>&1 &
PCSCD_PID=$!

export PCSCLITE_CSOCK_NAME=$DIR/run/pcscd.comm
export HOME=$DIR/home XDG_CONFIG_HOME=$DIR/home/.config XDG_DATA_HOME=$DIR/home/.local/share \
    XDG_CACHE_HOME=$DIR/home/.cache XDG_STATE_HOME=$DIR/home/.local/state \
    XDG_RUNTIME_DIR=$DIR/xdg-runtime
unset RUST_LOG OATHBRIDGE_LOG DBUS_STARTER_ADDRESS DBUS_STARTER_BUS_TYPE

for _ in $(seq 100); do [ -S "$PCSCLITE_CSOCK_NAME" ] && break; sleep 0.05; done
[ -S "$PCSCLITE_CSOCK_NAME" ] || { echo "bench: pcscd did not start" >&2; cat "$DIR/pcscd.log" >&2; exit 1; }

"$OATHBRIDGE" emulate --vpcd "127.0.0.1:$PORT" >"$DIR/card.log" 2>&1 &
CARD_PID=$!
for _ in $(seq 100); do
    "$OATHBRIDGE" --reader "$READER" devices >/dev/null 2>&1 && break
    sleep 0.1
done
"$OATHBRIDGE" --reader "$READER" devices >/dev/null || { echo "bench: no card" >&2; cat "$DIR/card.log" >&2; exit 1; }

# A private session bus (no service files: nothing of the host can be activated on it).
cat >"$DIR/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$DIR/bus.sock</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
DBUS_PID=$(dbus-daemon --config-file="$DIR/dbus.conf" --fork --nopidfile --print-pid=1 2>"$DIR/dbus.log")
export DBUS_SESSION_BUS_ADDRESS=unix:path=$DIR/bus.sock

"$OATHBRIDGE" daemon >"$DIR/daemon.log" 2>&1 &
DAEMON_PID=$!
owned=""
for _ in $(seq 100); do
    if busctl --user status "$BUS_NAME" >/dev/null 2>&1; then owned=1; break; fi
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$owned" ] || { echo "bench: the daemon did not take $BUS_NAME" >&2; cat "$DIR/daemon.log" >&2; exit 1; }

# 5 accounts, a mix of algorithms, digits and periods (the same as scripts/bench-code.sh).
add() {
    busctl --user call "$BUS_NAME" "$ROOT" "$MANAGER" AddAccount 'a{sv}a{sv}' 1 uri s "$1" 0 >/dev/null
}
add "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub"
add "otpauth://totp/Google:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Google"
add "otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZ&issuer=Amazon%20Web%20Services"
add "otpauth://totp/Example:sha256?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&algorithm=SHA256&digits=8"
add "otpauth://totp/Example:slow?secret=KRSXG5CTMVRXEZLU&period=60"

GETCODES=(busctl --user call "$BUS_NAME" "$ROOT" "$MANAGER" GetCodes 'a{sv}' 0)
echo "--- busctl GetCodes (through the daemon)"
"${GETCODES[@]}"
echo "--- ykman oath accounts code"
"$YKMAN" --reader "$READER" oath accounts code
echo

echo "=== (a) warm 'oathbridge code' through the daemon, busctl GetCodes, vs ykman"
hyperfine -N --warmup 3 --runs 30 --export-json "$DIR/bench.json" \
    "$OATHBRIDGE code" \
    "busctl --user call $BUS_NAME $ROOT $MANAGER GetCodes a{sv} 0" \
    "$YKMAN --reader '$READER' oath accounts code"
python3 - "$DIR/bench.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
cli, busctl, ykman = (r["mean"] * 1000 for r in results)
print(f"oathbridge code (daemon):   {cli:8.1f} ms mean")
print(f"busctl GetCodes (daemon):   {busctl:8.1f} ms mean")
print(f"ykman oath accounts code:   {ykman:8.1f} ms mean")
print(f"ratio (ykman / oathbridge code): {ykman / cli:.1f}x")
print(f"ratio (ykman / busctl):          {ykman / busctl:.1f}x")
EOF
echo

echo "=== (b) 1000 cached GetCodes"
# busctl in a loop; EPOCHREALTIME (bash 5) costs no fork.
: >"$DIR/busctl-ms.txt"
for _ in $(seq 1000); do
    t0=$EPOCHREALTIME
    "${GETCODES[@]}" >/dev/null
    t1=$EPOCHREALTIME
    echo "$t0 $t1" >>"$DIR/busctl-ms.txt"
done
python3 - "$DIR/busctl-ms.txt" <<'EOF'
import sys
ms = sorted((float(b) - float(a)) * 1000 for a, b in (l.split() for l in open(sys.argv[1])))
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"busctl per call (incl. process start): p50 {p(0.50):6.2f} ms  p95 {p(0.95):6.2f} ms  (n={len(ms)})")
EOF
if "$PYTHON" -c 'import jeepney' 2>/dev/null; then
    "$PYTHON" - "$BUS_NAME" "$ROOT" "$MANAGER" <<'EOF'
import sys, time
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
name, root, manager = sys.argv[1:4]
conn = open_dbus_connection(bus="SESSION")
addr = DBusAddress(root, bus_name=name, interface=manager)
def call():
    reply = conn.send_and_get_reply(new_method_call(addr, "GetCodes", "a{sv}", ({},)))
    assert reply.header.message_type.name == "method_return", reply.body
    return reply.body[0]
assert len(call()) == 5
ms = []
for _ in range(1000):
    t0 = time.perf_counter()
    call()
    ms.append((time.perf_counter() - t0) * 1000)
ms.sort()
p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"one connection (jeepney):             p50 {p(0.50):6.2f} ms  p95 {p(0.95):6.2f} ms  (n={len(ms)})")
EOF
else
    echo "(no jeepney next to ykman: in-process loop skipped)"
fi
echo

echo "=== (c) daemon memory"
grep -E '^(VmRSS|VmHWM):' "/proc/$DAEMON_PID/status"
echo

echo "=== (d) daemon CPU time over 10 idle seconds"
ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
HZ=$(getconf CLK_TCK)
before=$(ticks)
sleep 10
after=$(ticks)
echo "utime+stime: $((after - before)) ticks (1 tick = $((1000 / HZ)) ms) in 10 s idle"
