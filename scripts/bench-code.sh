#!/usr/bin/env bash
# How long `oathbridge code` takes against `ykman oath accounts code`, both reading the same
# 5 accounts from the virtual key through a private pcscd (the test bed's setup: unshare -m,
# a bind mount on /run/pcscd, the vpcd driver on a free port). Nothing of the user's pcscd,
# keys or files is touched; everything started here is stopped on exit.
#
#   bash scripts/bench-code.sh            # ykman from target/ykman-venv (scripts/test.sh makes it)
#   OATHBRIDGE_YKMAN=/usr/bin/ykman bash scripts/bench-code.sh
set -euo pipefail
cd "$(dirname "$0")/.."

READER="Virtual PCD 00 00"
VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
YKMAN=${OATHBRIDGE_YKMAN:-target/ykman-venv/bin/ykman}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

need_packages=()
command -v hyperfine >/dev/null || need_packages+=(hyperfine)
[ -x /usr/sbin/pcscd ] || command -v pcscd >/dev/null || need_packages+=(pcscd)
[ -e "$VPCD_DRIVER" ] || need_packages+=(vsmartcard-vpcd)
if [ ${#need_packages[@]} -gt 0 ]; then
    echo "bench: installing ${need_packages[*]}" >&2
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi
[ -x "$YKMAN" ] || { echo "bench: no ykman at $YKMAN (set OATHBRIDGE_YKMAN)" >&2; exit 1; }
PCSCD=$(command -v pcscd || echo /usr/sbin/pcscd)

cargo build --release --quiet
OATHBRIDGE=$PWD/target/release/oathbridge

DIR=$(mktemp -d /tmp/oathbridge-bench-XXXXXX)
PCSCD_PID=""
CARD_PID=""
cleanup() {
    for pid in $CARD_PID $PCSCD_PID; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $CARD_PID $PCSCD_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/run" "$DIR/reader.conf.d" "$DIR/home"
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
    XDG_CACHE_HOME=$DIR/home/.cache XDG_STATE_HOME=$DIR/home/.local/state
unset RUST_LOG OATHBRIDGE_LOG

for _ in $(seq 100); do [ -S "$PCSCLITE_CSOCK_NAME" ] && break; sleep 0.05; done
[ -S "$PCSCLITE_CSOCK_NAME" ] || { echo "bench: pcscd did not start" >&2; cat "$DIR/pcscd.log" >&2; exit 1; }

"$OATHBRIDGE" emulate --vpcd "127.0.0.1:$PORT" >"$DIR/card.log" 2>&1 &
CARD_PID=$!
for _ in $(seq 100); do
    "$OATHBRIDGE" --reader "$READER" devices >/dev/null 2>&1 && break
    sleep 0.1
done
"$OATHBRIDGE" --reader "$READER" devices >/dev/null || { echo "bench: no card" >&2; cat "$DIR/card.log" >&2; exit 1; }

# 5 accounts, a mix of algorithms, digits and periods (all computed by CALCULATE ALL or recomputed).
add() { echo "$1" | "$OATHBRIDGE" --reader "$READER" add --from - "${@:2}" 2>/dev/null; }
add "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub"
add "otpauth://totp/Google:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Google"
add "otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZ&issuer=Amazon%20Web%20Services"
add "otpauth://totp/Example:sha256?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&algorithm=SHA256&digits=8"
add "otpauth://totp/Example:slow?secret=KRSXG5CTMVRXEZLU&period=60"
echo "--- oathbridge code"
"$OATHBRIDGE" --reader "$READER" code
echo "--- ykman oath accounts code"
"$YKMAN" --reader "$READER" oath accounts code
echo

hyperfine -N --warmup 3 --runs 30 --export-json "$DIR/bench.json" \
    "$OATHBRIDGE --reader '$READER' code" \
    "$YKMAN --reader '$READER' oath accounts code"

python3 - "$DIR/bench.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
ours, ykman = (r["mean"] * 1000 for r in results)
print(f"oathbridge code:           {ours:8.1f} ms mean")
print(f"ykman oath accounts code:  {ykman:8.1f} ms mean")
print(f"ratio (ykman / oathbridge): {ykman / ours:.1f}x")
EOF
