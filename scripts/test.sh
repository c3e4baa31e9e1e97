#!/usr/bin/env bash
# The project's test command (README "Tests"; CI runs it through .ci/run):
#   1. installs the system packages the test bed needs (Debian/Ubuntu, apt; skipped when present),
#   2. creates target/ykman-venv with yubikey-manager 5.9.2 (reused when already there),
#   3. cargo fmt --check, cargo clippy -D warnings, cargo test --all-targets,
#   4. when run as root (CI): the same test binaries again as an ordinary user
#      (scripts/test-as-user.sh), proving the suite is rootless.
# The integration tests start their own private pcscd/vpcd (mount namespace, free ports),
# emulated cards and dbus-daemon; nothing is started or changed system-wide apart from
# the packages and an empty /run/pcscd directory (the bind-mount target).
# Runs as root, or as a user with sudo (for apt-get). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

YKMAN_VERSION=5.9.2
VENV=${OATHBRIDGE_YKMAN_VENV:-$PWD/target/ykman-venv}

banner() { printf '\n==> %s\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root, or install sudo (needed for apt-get)"
  SUDO=(sudo)
fi

banner "system packages"
# python3-dev and gcc: pyscard (a ykman dependency) has no Linux wheel and is compiled.
# libglib2.0-bin (gdbus), systemd (busctl, systemd-analyze), desktop-file-utils: D-Bus and
# desktop-file tests. gnome-keyring: a real Secret Service for the remembered-password tests.
# xvfb, xclip: a private X server and a second X client for the clipboard tests.
# lintian, dpkg-dev (dpkg-shlibdeps for cargo-deb's $auto): tests/deb_package.rs.
packages=(pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev libudev-dev pkg-config dbus-daemon dbus-bin
  python3-venv python3-dev gcc libglib2.0-bin systemd desktop-file-utils gnome-keyring
  xvfb xclip)
packages+=(lintian dpkg-dev)
# gnome-shell, gjs (runs its org.gnome.Shell.Notifications service): tests/gnome_shell.rs.
packages+=(gnome-shell gjs)
# plasma-workspace (krunner), xdotool, imagemagick (import): tests/krunner.rs, a real KRunner.
packages+=(plasma-workspace xdotool imagemagick)
if command -v dpkg-query >/dev/null; then
  missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    install=()
    for package in "${missing[@]}"; do
      # Older releases (Ubuntu 22.04) ship dbus-daemon and dbus-bin inside `dbus`.
      if [[ $package == dbus-daemon || $package == dbus-bin ]] &&
        ! apt-cache show "$package" >/dev/null 2>&1; then
        package=dbus
      fi
      install+=("$package")
    done
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${install[@]}" </dev/null
  else
    echo "all present: ${packages[*]}"
  fi
else
  echo "no dpkg: not a Debian/Ubuntu system; install the equivalents of: ${packages[*]}"
fi
for program in pcscd pcsc_scan unshare dbus-daemon python3 pkg-config Xvfb xclip; do
  command -v "$program" >/dev/null || [ -x "/usr/sbin/$program" ] || die "missing program: $program"
done
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || die "missing vpcd driver (vsmartcard-vpcd)"
# The test bed bind-mounts a private dir here inside its own mount namespace.
[ -d /run/pcscd ] || "${SUDO[@]}" mkdir -p /run/pcscd

banner "yubikey-manager $YKMAN_VERSION (venv: $VENV)"
if "$VENV/bin/ykman" --version 2>/dev/null | grep -q "version: $YKMAN_VERSION\$"; then
  echo "reusing $VENV"
else
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "yubikey-manager==$YKMAN_VERSION" </dev/null
  "$VENV/bin/ykman" --version | grep -q "version: $YKMAN_VERSION\$" ||
    die "ykman in $VENV is not version $YKMAN_VERSION"
fi
export OATHBRIDGE_YKMAN=$VENV/bin/ykman
echo "OATHBRIDGE_YKMAN=$OATHBRIDGE_YKMAN"

banner "rust toolchain"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null || die "cargo fmt / cargo clippy missing and no rustup to add them"
  rustup component add rustfmt clippy
fi
cargo --version
rustc --version

banner "cargo-deb (scripts/build-deb.sh, tests/deb_package.rs)"
# 3.8.0 is the version the packaging was made with (it builds with Rust 1.95 in ~3 min).
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0
cargo deb --version

banner "cargo fmt --all -- --check"
cargo fmt --all -- --check

banner "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

banner "cargo test --all-targets"
cargo test --all-targets

if [ "$(id -u)" -eq 0 ]; then
  banner "the same tests as an ordinary user (rootless)"
  bash scripts/test-as-user.sh
fi

banner "all tests passed"
