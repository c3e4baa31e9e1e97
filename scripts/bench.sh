#!/usr/bin/env bash
# One table, every row measured in this run: `ykman oath accounts code` vs `oathbridge
# --direct code` vs `oathbridge code` through the daemon (cold D-Bus activation, warm = a
# time step not cached yet, cached), for 1 key x 5 accounts, 1 key x 64 and 4 keys x 64
# with one slow key. Each row has its APDUs per operation (counted in pcscd's APDU log)
# and its ratio to the physical minimum: the time the keys themselves need to answer the
# fewest APDUs that give every code (SELECT, CALCULATE ALL and its SEND REMAINING chain,
# one CALCULATE per account whose period is not 30 s), keys asked at once. A cache can beat
# it (ratio < 1). Then cached GetCodes p50/p95/p99 over one D-Bus connection, against a
# baseline: the daemon's reply, captured once, sent back through the same bus by a process
# that does nothing else (`bench_client echo`), calls alternating. Then the
# daemon's RSS, threads and fds before and after a time-bounded soak of mixed calls from
# several connections (codes, queries, adds, deletes, one key pulled and plugged back).
#
# The cards are emulated (`oathbridge emulate`) with --apdu-latency-ms 3, like a key over
# USB; the slow key also has --latency calculate=40. They sit behind a private pcscd (the
# test bed's setup: unshare -m, a bind mount on /run/pcscd, two copies of the vpcd driver
# on free ports, four readers) and a private session bus that activates the daemon. Nothing
# of the user's pcscd, bus, keys or files is touched; everything started here is stopped on
# exit. Numbers are printed, nothing is asserted.
#
#   bash scripts/bench.sh                  # full run, a few minutes
#   BENCH_QUICK=1 bash scripts/bench.sh    # smoke run: few iterations, short soak
#   BENCH_PERF=1 bash scripts/bench.sh     # also `perf record` the daemon during cached
#                                          # GetCodes at 64 accounts (target/bench-perf.txt)
#   BENCH_KEEP=1 bash scripts/bench.sh     # keep the temp dir (pcscd.log, card and bus logs)
#   OATHBRIDGE_YKMAN=/usr/bin/ykman bash scripts/bench.sh   # default: target/ykman-venv
set -euo pipefail
cd "$(dirname "$0")/.."

VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
YKMAN=${OATHBRIDGE_YKMAN:-target/ykman-venv/bin/ykman}
BUS_NAME=io.github.oathbridge.OathBridge1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

need_packages=()
[ -x /usr/sbin/pcscd ] || command -v pcscd >/dev/null || need_packages+=(pcscd)
[ -e "$VPCD_DRIVER" ] || need_packages+=(vsmartcard-vpcd)
command -v dbus-daemon >/dev/null || need_packages+=(dbus-daemon)
command -v busctl >/dev/null || need_packages+=(systemd)
command -v python3 >/dev/null || need_packages+=(python3)
if [ "${BENCH_PERF:-0}" = 1 ] && ! command -v perf >/dev/null; then
    need_packages+=(linux-perf)
fi
if [ ${#need_packages[@]} -gt 0 ]; then
    echo "bench: installing ${need_packages[*]}" >&2
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_packages[@]}" >/dev/null
fi
[ -x "$YKMAN" ] || { echo "bench: no ykman at $YKMAN (set OATHBRIDGE_YKMAN)" >&2; exit 1; }
PCSCD=$(command -v pcscd || echo /usr/sbin/pcscd)

echo "bench: building (release)" >&2
cargo build --release --quiet --bin oathbridge --example bench_client
OATHBRIDGE=$PWD/target/release/oathbridge
CLIENT=$PWD/target/release/examples/bench_client

DIR=$(mktemp -d /tmp/oathbridge-bench-XXXXXX)
PCSCD_PID=""
DBUS_PID=""
cleanup() {
    # The driver's cards and the activated daemon (their ids are in $DIR/pids), then ours.
    local pids
    pids="$(cat "$DIR/pids" 2>/dev/null || true) $DBUS_PID $PCSCD_PID"
    for pid in $pids; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench: kept $DIR (logs, pcscd APDU log)" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/run" "$DIR/reader.conf.d" "$DIR/home" "$DIR/xdg-runtime" "$DIR/services"
chmod 700 "$DIR/xdg-runtime"
: >"$DIR/pids"
$SUDO mkdir -p /run/pcscd   # the bind-mount target; pcscd always binds /run/pcscd/pcscd.comm

# Four free vpcd ports PORT..PORT+3: nothing listening on them now.
port_free() { ! ss -ltn | grep -q ":$1 "; }
while :; do
    PORT=$((20000 + RANDOM % 40000))
    port_free "$PORT" && port_free $((PORT + 1)) && port_free $((PORT + 2)) &&
        port_free $((PORT + 3)) && break
done
# The vpcd driver keeps one card per slot number in a global, so a second reader needs a
# second copy of the library (dlopen loads it separately): readers "Virtual PCD A 00 00",
# "… A 00 01" (PORT, PORT+1) and "Virtual PCD B 00 00", "… B 00 01" (PORT+2, PORT+3).
cp "$VPCD_DRIVER" "$DIR/libifdvpcd-b.so"
cat >"$DIR/reader.conf.d/vpcd" <<EOF
FRIENDLYNAME "Virtual PCD A"
DEVICENAME   /dev/null:$PORT
LIBPATH      $VPCD_DRIVER
CHANNELID    $PORT

FRIENDLYNAME "Virtual PCD B"
DEVICENAME   /dev/null:$((PORT + 2))
LIBPATH      $DIR/libifdvpcd-b.so
CHANNELID    $((PORT + 2))
EOF

map_root=()
[ "$(id -u)" -eq 0 ] || map_root=(--map-root-user)
# unshare and sh exec, so $! is pcscd itself. --debug --apdu: every APDU in pcscd.log.
unshare "${map_root[@]}" -m --propagation private sh -c \
    'mount --bind "$0/run" /run/pcscd && exec "$@"' "$DIR" \
    "$PCSCD" --foreground --debug --apdu -c "$DIR/reader.conf.d" >"$DIR/pcscd.log" 2>&1 &
PCSCD_PID=$!

export PCSCLITE_CSOCK_NAME=$DIR/run/pcscd.comm
export HOME=$DIR/home XDG_CONFIG_HOME=$DIR/home/.config XDG_DATA_HOME=$DIR/home/.local/share \
    XDG_CACHE_HOME=$DIR/home/.cache XDG_STATE_HOME=$DIR/home/.local/state \
    XDG_RUNTIME_DIR=$DIR/xdg-runtime
unset RUST_LOG OATHBRIDGE_LOG DBUS_STARTER_ADDRESS DBUS_STARTER_BUS_TYPE

for _ in $(seq 100); do [ -S "$PCSCLITE_CSOCK_NAME" ] && break; sleep 0.05; done
[ -S "$PCSCLITE_CSOCK_NAME" ] || { echo "bench: pcscd did not start" >&2; cat "$DIR/pcscd.log" >&2; exit 1; }

# A private session bus that activates the daemon (and nothing of the host's). The daemon
# it starts inherits this environment: the private pcscd, home and runtime dir.
cat >"$DIR/services/$BUS_NAME.service" <<EOF
[D-BUS Service]
Name=$BUS_NAME
Exec=$OATHBRIDGE daemon
EOF
cat >"$DIR/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$DIR/bus.sock</listen>
  <servicedir>$DIR/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
DBUS_PID=$(dbus-daemon --config-file="$DIR/dbus.conf" --fork --nopidfile --print-pid=1 2>"$DIR/dbus.log")
export DBUS_SESSION_BUS_ADDRESS=unix:path=$DIR/bus.sock

python3 - "$OATHBRIDGE" "$CLIENT" "$YKMAN" "$DIR" "$PORT" "${BENCH_QUICK:-0}" "${BENCH_PERF:-0}" <<'PYTHON'
import math
import os
import signal
import subprocess
import shutil
import sys
import time

OB, CLIENT, YKMAN, DIR, PORT, QUICK, PERF = sys.argv[1:8]
PORT, QUICK, PERF = int(PORT), QUICK == "1", PERF == "1"
BUS_NAME = "io.github.oathbridge.OathBridge1"
READERS = ["Virtual PCD A 00 00", "Virtual PCD A 00 01", "Virtual PCD B 00 00", "Virtual PCD B 00 01"]
APDU_MS = 3          # --apdu-latency-ms on every card
SLOW_CALC_MS = 40    # --latency calculate=… on the slow key
SLOW_SLOT = 3
CHUNK = 255          # the emulator chains responses longer than this (like a YubiKey)
SOAK_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PCSCD_LOG = os.path.join(DIR, "pcscd.log")

# Iterations per row (full / quick).
N = dict(ykman=(10, 2), direct=(20, 3), cold=(5, 2), warm=(20, 3), cached=(30, 3),
         latency=(1000, 200), soak=(100_000, 5_000), soak_seconds=(240, 20))
N = {k: v[1] if QUICK else v[0] for k, v in N.items()}

cards = {}   # slot -> Popen


def note_pid(pid):
    with open(os.path.join(DIR, "pids"), "a") as f:
        f.write(f"{pid}\n")


def run(argv, stdin=None, check=True):
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if check and done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return done


def start_card(slot, extra=()):
    log = open(os.path.join(DIR, f"card{slot}.log"), "a")
    card = subprocess.Popen(
        [OB, "emulate", "--vpcd", f"127.0.0.1:{PORT + slot}", "--state",
         os.path.join(DIR, f"card{slot}.json"), "--apdu-latency-ms", str(APDU_MS), *extra],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    note_pid(card.pid)
    cards[slot] = (card, tuple(extra))
    for _ in range(100):
        if run([OB, "--direct", "--reader", READERS[slot], "devices"], check=False).returncode == 0:
            return
        time.sleep(0.1)
    sys.exit(f"bench: the card in {READERS[slot]} did not show up")


def stop_card(slot):
    card, _ = cards.pop(slot)
    card.terminate()
    card.wait(10)


def daemon_pid():
    done = run(["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", BUS_NAME], check=False)
    return int(done.stdout.split()[1]) if done.returncode == 0 else None


def stop_daemon():
    pid = daemon_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}") and daemon_pid() is None:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def log_size():
    return os.path.getsize(PCSCD_LOG)


def apdus_since(offset):
    with open(PCSCD_LOG, "rb") as f:
        f.seek(offset)
        return sum(1 for line in f if b" APDU: " in line)


# --- accounts -------------------------------------------------------------------------
FIVE = [
    ("otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub", "GitHub:alice", 30),
    ("otpauth://totp/Google:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Google",
     "Google:alice@example.com", 30),
    ("otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZ&issuer=Amazon%20Web%20Services",
     "Amazon Web Services:alice@123456789012", 30),
    ("otpauth://totp/Example:sha256?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA&algorithm=SHA256&digits=8",
     "Example:sha256", 30),
    ("otpauth://totp/Example:slow?secret=KRSXG5CTMVRXEZLU&period=60", "60/Example:slow", 60),
]
TEMPLATES = [  # (secret, extra parameters, period): one account in 8 has a 60 s period
    ("JBSWY3DPEHPK3PXP", "", 30),
    ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "", 30),
    ("MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIYTEMZUGU3DOOBZ", "", 30),
    ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA", "&algorithm=SHA256&digits=8", 30),
    ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "&digits=8", 30),
    ("JBSWY3DPEHPK3PXP", "", 30),
    ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA", "&algorithm=SHA256", 30),
    ("KRSXG5CTMVRXEZLU", "&period=60", 60),
]


def sixty_four():
    out = []
    for i in range(62):
        secret, extra, period = TEMPLATES[i % len(TEMPLATES)]
        issuer, name = f"Service{i}", f"user{i}@example.com"
        uri = f"otpauth://totp/{issuer}:{name}?secret={secret}&issuer={issuer}{extra}"
        out.append((uri, (f"{period}/" if period != 30 else "") + f"{issuer}:{name}", period))
    for slot in range(2):  # the soak deletes and adds these back
        out.append((f"otpauth://totp/Soak:slot{slot}?secret={SOAK_SECRET}&issuer=Soak",
                    f"Soak:slot{slot}", 30))
    return out


def load_accounts(slot, accounts):
    path = os.path.join(DIR, f"accounts{slot}.txt")
    with open(path, "w") as f:
        f.write("".join(uri + "\n" for uri, _, _ in accounts))
    run([OB, "--direct", "--reader", READERS[slot], "add", "--from", path])


def key_minimum(accounts, calc_ms):
    """(APDUs, ms) a key needs at least to give every code of `accounts`."""
    data = sum(2 + len(ident.encode()) + 7 for _, ident, _ in accounts)   # 71 id, 76 code
    chunks = max(1, math.ceil(data / CHUNK))
    recalculated = sum(1 for _, _, period in accounts if period != 30)
    return 1 + chunks + recalculated, (1 + chunks) * APDU_MS + recalculated * calc_ms


# --- measuring ------------------------------------------------------------------------
rows = []   # (scenario, what, p50 ms, APDUs per op, minimum ms, note)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(scenario, what, n, commands, minimum_ms, between=None):
    """Run `commands(i)` (argv lists, one after another = one operation) n times."""
    time.sleep(0.5)   # let the previous row's stragglers reach the log first
    offset = log_size()
    times = []
    for i in range(n):
        started = time.perf_counter()
        for argv in commands(i):
            run(argv)
        times.append((time.perf_counter() - started) * 1000)
        if between:
            between(i)
    apdus = apdus_since(offset) / n
    rows.append((scenario, what, percentile(times, 0.5), apdus, minimum_ms, f"n={n}"))
    print(f"  {what}: p50 {percentile(times, 0.5):.1f} ms, {apdus:.1f} APDUs", file=sys.stderr)


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bus_pid():
    done = run(["busctl", "--user", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s",
                "org.freedesktop.DBus"], check=False)
    return int(done.stdout.split()[1]) if done.returncode == 0 else None


def start_echo(timestamp):
    """The GetCodes baseline: a process that answers with the daemon's own reply
    bytes (captured once), so each call is one bus round trip carrying the same entries."""
    echo = subprocess.Popen([CLIENT, "echo", "--timestamp", str(timestamp)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    note_pid(echo.pid)
    line = echo.stdout.readline()   # "echo: N bytes" once it holds its name
    if not line.startswith("echo:"):
        sys.exit(f"bench: the echo did not start: {line}{echo.stderr.read()}")
    return echo, int(line.split()[1])


def client_latency(scenario, timestamp):
    time.sleep(0.5)
    echo, reply_bytes = start_echo(timestamp)
    offset = log_size()
    pids = {"daemon": daemon_pid(), "dbus-daemon": bus_pid()}
    cpu = {who: cpu_seconds(pid) for who, pid in pids.items()}
    out = run([CLIENT, "latency", "--calls", str(N["latency"]), "--timestamp", str(timestamp),
               "--echo"]).stdout
    fields = dict(kv.split("=") for kv in out.split())
    # Every call (decoded or not) costs the daemon and the bus the same; the bus also
    # carried the echo's calls, the same call and reply bytes, counted as costing it the same.
    calls = {"daemon": int(fields["calls_total"]),
             "dbus-daemon": int(fields["calls_total"]) + int(fields["echo_calls_total"])}
    per_call = {who: (cpu_seconds(pid) - cpu[who]) * 1e6 / calls[who]
                for who, pid in pids.items()}
    echo.terminate()
    echo.wait(10)
    apdus = apdus_since(offset) / N["latency"]
    f = lambda key: float(fields[key])
    entries, n = fields["entries"], fields["n"]
    rows.append((scenario, "GetCodes baseline: the same reply echoed through the bus",
                 f("echo_raw_p50_ms"), 0, f("echo_raw_p50_ms"),
                 f"decoded into fields {f('echo_p50_ms'):.2f} ms; {entries} entries,"
                 f" {reply_bytes} bytes"))
    rows.append((scenario, "GetCodes cached, one connection: reply received",
                 f("raw_p50_ms"), apdus, f("echo_raw_p50_ms"),
                 f"p95 {f('raw_p95_ms'):.2f} p99 {f('raw_p99_ms'):.2f} ms; CPU per call: daemon"
                 f" {per_call['daemon']:.0f} us, dbus-daemon {per_call['dbus-daemon']:.0f} us;"
                 f" n={n}"))
    rows.append((scenario, "GetCodes cached, one connection: decoded into fields",
                 f("p50_ms"), apdus, f("echo_p50_ms"),
                 f"p95 {f('p95_ms'):.2f} p99 {f('p99_ms'):.2f} ms; as generic dicts"
                 f" {f('generic_p50_ms'):.2f} ms"))
    return fields


def perf_profile(label):
    """perf record the daemon (DWARF call graphs from .eh_frame) while one connection asks."""
    pid = daemon_pid()
    data = os.path.join(DIR, "perf.data")
    perf = subprocess.Popen(["perf", "record", "-F", "1999", "--call-graph", "dwarf,16384",
                             "-p", str(pid), "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    run([CLIENT, "latency", "--calls", "5000", "--timestamp", "1800000000"])
    perf.send_signal(signal.SIGINT)
    perf.wait(60)
    report = lambda *args: run(["perf", "report", "-i", data, "--stdio",
                                "-g", "none", "--percent-limit", "1", *args], check=False).stdout
    out = os.path.join("target", "bench-perf.txt")
    with open(out, "w") as f:
        f.write(f"# perf record -p <daemon> during cached GetCodes, {label}\n")
        f.write("# --- self time by symbol ---\n")
        f.write(report("--no-children", "--sort", "dso,symbol"))
        f.write("# --- time including callees ---\n")
        f.write(report("--children", "--sort", "symbol"))
    print(f"bench: perf profile ({label}) in {out}", file=sys.stderr)


def scenario(name, slots, accounts_per_slot):
    print(f"bench: {name}", file=sys.stderr)
    minima = {s: key_minimum(accounts_per_slot[s], SLOW_CALC_MS if s == SLOW_SLOT else APDU_MS)
              for s in slots}
    min_ms = max(ms for _, ms in minima.values())
    min_apdus = sum(a for a, _ in minima.values())
    rows.append((name, "physical minimum", min_ms, min_apdus, min_ms,
                 "keys asked at once" if len(slots) > 1 else ""))
    measure(name, "ykman oath accounts code" + (f" ({len(slots)} runs, one per key)" if len(slots) > 1 else ""),
            N["ykman"], lambda i: [[YKMAN, "--reader", READERS[s], "oath", "accounts", "code"]
                                   for s in slots], min_ms)
    measure(name, "oathbridge --direct code", N["direct"],
            lambda i: [[OB, "--direct", "code"]], min_ms)
    stop_daemon()
    measure(name, "daemon: cold activation", N["cold"], lambda i: [[OB, "code"]], min_ms,
            between=lambda i: stop_daemon())
    run([OB, "code", "--at", "1600000000"])    # activate it again, outside the rows
    measure(name, "daemon: warm (step not cached)", N["warm"],
            lambda i: [[OB, "code", "--at", str(1_900_000_000 + i * 600)]], min_ms)
    run([OB, "code", "--at", "1800000000"])    # fill that step
    measure(name, "daemon: cached", N["cached"],
            lambda i: [[OB, "code", "--at", "1800000000"]], min_ms)
    fields = client_latency(name, 1_800_000_000)
    if PERF and len(slots) == 1 and len(accounts_per_slot[slots[0]]) == 64:
        perf_profile(f"1 key x 64, p50 {fields['p50_ms']} ms")


def proc_stats(pid):
    stats = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            # RssAnon: the daemon's heap and stacks; RssFile: mapped files (its code, libc).
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                stats[key] = value.strip()
    try:
        stats["fds"] = str(len(os.listdir(f"/proc/{pid}/fd")))
    except PermissionError:
        stats["fds"] = "unreadable (the daemon is non-dumpable; run as root)"
    return stats


def main():
    t0 = time.time()
    five = {0: FIVE}
    start_card(0)
    load_accounts(0, FIVE)
    scenario("1 key x 5", [0], five)
    stop_daemon()

    stop_card(0)
    os.remove(os.path.join(DIR, "card0.json"))
    start_card(0)
    sixty = {s: sixty_four() for s in range(4)}
    load_accounts(0, sixty[0])
    scenario("1 key x 64", [0], sixty)
    stop_daemon()

    for slot in (1, 2, 3):
        start_card(slot, ("--latency", f"calculate={SLOW_CALC_MS}") if slot == SLOW_SLOT else ())
        load_accounts(slot, sixty[slot])
    scenario(f"4 keys x 64 (1 slow)", [0, 1, 2, 3], sixty)

    # --- the table ---
    width = max(len(r[1]) for r in rows)
    print()
    print(f"cards: --apdu-latency-ms {APDU_MS}; slow key: --latency calculate={SLOW_CALC_MS}; "
          f"times are p50 over n runs (processes timed from start to exit)")
    print(f"{'scenario':<22} {'what':<{width}} {'ms':>9} {'APDUs/op':>9} {'x min':>7}  note")
    last = None
    for name, what, ms, apdus, minimum, note in rows:
        shown = name if name != last else ""
        last = name
        ratio = ms / minimum if minimum else float("nan")
        print(f"{shown:<22} {what:<{width}} {ms:9.2f} {apdus:9.1f} {ratio:6.2f}x  {note}")
    print()

    # --- soak ---
    pid = daemon_pid()
    before = proc_stats(pid)
    print(f"daemon before the soak: RSS {before['VmRSS']} (peak {before['VmHWM']}; "
          f"anonymous {before['RssAnon']}, files {before['RssFile']}), "
          f"threads {before['Threads']}, fds {before['fds']}")
    soak = subprocess.Popen(
        [CLIENT, "soak", "--calls", str(N["soak"]), "--clients", "4", "--max-seconds",
         str(N["soak_seconds"]), "--write-reader", READERS[0], "--soak-secret", SOAK_SECRET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    note_pid(soak.pid)
    time.sleep(2 if QUICK else 5)
    # Pull key 2 and plug it back in (same state file) while the calls go on.
    pulled = READERS[2]
    stop_card(2)
    time.sleep(1 if QUICK else 2)
    start_card(2)
    out, err = soak.communicate()
    if soak.returncode != 0:
        sys.exit(f"bench: the soak failed:\n{err}{out}")
    time.sleep(1)
    after = proc_stats(pid)
    fields = dict(kv.split("=") for kv in out.splitlines()[0].split())
    print(f"soak: {fields['calls']} mixed calls from {fields['clients']} connections in "
          f"{fields['seconds']} s ({fields['per_second']}/s, stopped by {fields['stopped_by']}; "
          f"{pulled} pulled and plugged back in); {fields['errors']} errors")
    for line in out.splitlines()[1:]:
        print(f"  {line}")
    print(f"daemon after the soak:  RSS {after['VmRSS']} (peak {after['VmHWM']}; "
          f"anonymous {after['RssAnon']}, files {after['RssFile']}), "
          f"threads {after['Threads']}, fds {after['fds']}")
    if os.environ.get("BENCH_KEEP") == "1":
        shutil.copy(f"/proc/{pid}/smaps", os.path.join(DIR, "daemon-smaps.txt"))
    entries = run([CLIENT, "latency", "--calls", "1", "--warmup", "1"]).stdout.split()[0]
    print(f"daemon still serving: GetCodes {entries.replace('=', ' ')} (pid {pid} -> {daemon_pid()})")
    print(f"total {time.time() - t0:.0f} s")


try:
    main()
finally:
    for card, _ in list(cards.values()):
        card.terminate()
    stop_daemon()
PYTHON
