#!/usr/bin/env bash
# Build the Debian package with cargo-deb, from Cargo.toml's [package.metadata.deb]:
#
#   bash scripts/build-deb.sh                    # release build: target/debian/oathbridge_<version>-1_<arch>.deb
#   bash scripts/build-deb.sh --profile dev      # the debug build instead (what tests/deb_package.rs uses)
#   bash scripts/build-deb.sh --output DIR       # write the .deb into DIR (default: target/debian)
#
# Steps: cargo build; generate the man page and the bash/zsh/fish completions from the
# built binary into target/assets/ (cargo-deb packages files, and these come from the
# binary); `cargo deb --no-build`. The last line on stdout is the .deb's path; the rest
# goes to stderr.
#
# Needs cargo-deb (`cargo install cargo-deb --locked`) and dpkg-dev (dpkg-shlibdeps, for
# the `$auto` dependencies). Install the result with `sudo apt install ./target/debian/oathbridge_*.deb`.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

die() { printf 'scripts/build-deb.sh: %s\n' "$*" >&2; exit 1; }

profile=release
output=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || die "--profile needs a value"; profile=$2; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --output) [ $# -ge 2 ] || die "--output needs a value"; output=$2; shift 2 ;;
    --output=*) output=${1#--output=}; shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

command -v cargo-deb >/dev/null ||
  die "cargo-deb is missing: cargo install cargo-deb --locked"
command -v dpkg-shlibdeps >/dev/null ||
  die "dpkg-shlibdeps is missing (computes the \$auto dependencies): sudo apt-get install dpkg-dev"

echo "==> cargo build --profile $profile" >&2
cargo build --profile "$profile" --bin oathbridge >&2

# Where cargo put the binary (CARGO_TARGET_DIR and build.target-dir included).
target_dir=$(cargo metadata --no-deps --format-version 1 |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cannot find the target directory in 'cargo metadata'"
case "$profile" in
  dev | test) profile_dir=debug ;;
  bench) profile_dir=release ;;
  *) profile_dir=$profile ;;
esac
bin=$target_dir/$profile_dir/oathbridge
[ -x "$bin" ] || die "no binary at $bin after the build"

# The paths below are the ones [package.metadata.deb] assets name.
assets=target/assets
mkdir -p "$assets"
generate() { # generate FILE COMMAND...: write through a temporary file, so a failure leaves no half file
  local file=$assets/$1
  shift
  "$bin" "$@" >"$file.tmp"
  [ -s "$file.tmp" ] || die "'oathbridge $*' printed nothing"
  mv -f "$file.tmp" "$file"
}
echo "==> man page and shell completions into $assets/" >&2
generate oathbridge.1 man
generate oathbridge.bash completions bash
generate _oathbridge completions zsh
generate oathbridge.fish completions fish

echo "==> cargo deb --no-build --profile $profile" >&2
args=(--no-build --profile "$profile")
if [ -n "$output" ]; then
  mkdir -p "$output"
  args+=(--output "$output")
  # cargo-deb deletes every oathbridge_*.deb in target/debian before it builds, also when
  # it writes elsewhere: keep those (e.g. the release package) and put them back after.
  if [ "$(readlink -f "$output")" != "$(readlink -f "$target_dir/debian")" ]; then
    kept=$(mktemp -d)
    restore() {
      for f in "$kept"/*.deb; do
        [ -e "$f" ] && mv -n "$f" "$target_dir/debian/"
      done
      rm -rf "$kept"
    }
    trap restore EXIT
    for f in "$target_dir"/debian/oathbridge_*.deb; do
      [ -e "$f" ] && ln "$f" "$kept/"
    done
  fi
fi
deb=$(cargo deb "${args[@]}" | tail -n 1)
[ -f "$deb" ] || die "cargo deb did not print the path of a .deb (got: '$deb')"
readlink -f "$deb"
