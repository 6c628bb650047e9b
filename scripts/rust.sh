#!/usr/bin/env bash
# Rust for `make run` and `make test` on a machine that has none: rustup's own installer, into
# ~/.cargo and ~/.rustup (the Makefile puts ~/.cargo/bin on its PATH), with the minimal profile
# and the two components the checks use. Nothing happens where cargo is already installed.
set -euo pipefail
. "$(dirname "$0")/apt.sh"
RUST_RELEASE=1.95.0

if command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ]; then
  exit 0
fi
if ! command -v curl >/dev/null 2>&1; then
  apt_install "installing Rust needs curl" curl ca-certificates
fi
echo "No Rust here: installing it with rustup into ~/.cargo (about a minute)" >&2
# rustup-init from Rust's own distribution server, which is what the sh.rustup.rs script fetches.
# It must be called rustup-init: it acts by the name it is run under.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
init=$dir/rustup-init
curl --proto '=https' --tlsv1.2 -sSf -o "$init" \
  "https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
chmod +x "$init"
# The release the project's checks pass on: a newer clippy may deny what this one allows.
# rustup's own closing words tell the user to change their PATH, which make does for them: its
# output is shown only if it fails.
if ! "$init" -y -q --profile minimal --default-toolchain "$RUST_RELEASE" --component rustfmt,clippy \
  --no-modify-path >"$dir/rustup.log" 2>&1; then
  cat "$dir/rustup.log" >&2
  exit 1
fi
echo "Rust $RUST_RELEASE is installed in ~/.cargo; make finds it there (for your own shell: . ~/.cargo/env)" >&2
