#!/usr/bin/env bash
# Runs the already built test binaries again as an ordinary user (rootless: the private
# pcscd runs in a user + mount namespace, `unshare --user --map-root-user --mount`).
# Called by scripts/test.sh after the root run when it runs as root (CI); as a normal user
# the whole suite is rootless already and this script is not needed.
#
#   bash scripts/test-as-user.sh [USER]     # default user: oathbridge-ci (created if missing)
#
# Test binaries that need root by design are not run here, and are named:
#   daemon_access (creates a second user), deb_package (installs the .deb).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

user=${1:-oathbridge-ci}
root_only=(daemon_access deb_package)

[ "$(id -u)" -eq 0 ] || { echo "test-as-user.sh: run as root (it switches to $user)" >&2; exit 1; }
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
command -v runuser >/dev/null || { echo "test-as-user.sh: runuser (util-linux) missing" >&2; exit 1; }

# The user must reach the checkout: give its parent directories the traverse bit (o+x)
# where they lack it (e.g. a clone under /root), nothing more.
dir=$PWD
while [ "$dir" != / ]; do
  if ! runuser -u "$user" -- test -x "$dir"; then
    echo "test-as-user.sh: chmod o+x $dir (so $user can reach the checkout)"
    chmod o+x "$dir"
  fi
  dir=$(dirname "$dir")
done
# ykman's venv links to the Python it was made with (pyenv's may live under /root): the
# same traverse bit along that path.
if [ -n "${OATHBRIDGE_YKMAN:-}" ]; then
  python=$(readlink -f "$(dirname "$OATHBRIDGE_YKMAN")/python" || true)
  dir=$(dirname "${python:-/}")
  while [ -n "$python" ] && [ "$dir" != / ]; do
    runuser -u "$user" -- test -x "$dir" || { echo "test-as-user.sh: chmod o+x $dir (ykman's Python)"; chmod o+x "$dir"; }
    dir=$(dirname "$dir")
  done
fi
runuser -u "$user" -- test -r "$PWD/Cargo.toml" ||
  { echo "test-as-user.sh: $user cannot read $PWD" >&2; exit 1; }

# The test executables cargo built for the root run (no rebuild: the user cannot write target/).
mapfile -t binaries < <(cargo test --all-targets --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["kind"][0] + " " + m["target"]["name"] + " " + m["executable"])')
[ ${#binaries[@]} -gt 0 ] || { echo "test-as-user.sh: no test binaries found" >&2; exit 1; }

passed=0
failed=0
skipped_names=()
for entry in "${binaries[@]}"; do
  read -r kind name exe <<<"$entry"
  if printf '%s\n' "${root_only[@]}" | grep -qx "$name"; then
    skipped_names+=("$name")
    continue
  fi
  echo "==> as $user: $kind $name"
  if runuser -u "$user" -- env -i PATH="$PATH" HOME="$(getent passwd "$user" | cut -d: -f6)" \
      OATHBRIDGE_YKMAN="${OATHBRIDGE_YKMAN:-}" LANG=C.UTF-8 \
      bash -c 'cd "$1" && "$2" --test-threads=2' _ "$PWD" "$exe"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED as $user: $name"
  fi
done
echo "rootless run: not run here (need root by design): ${skipped_names[*]:-none}"
echo "rootless run: $passed test binaries passed, $failed failed"
[ "$failed" -eq 0 ]
