#!/usr/bin/env bash
# Python 3 with its venv module, for the checks and the tests' tools: a minimal Debian or Ubuntu
# image has no Python at all, and the full ones ship venv apart (python3-venv). Installed with apt
# when missing and this user may; otherwise says, in one line, what to install.
set -euo pipefail
. "$(dirname "$0")/apt.sh"

if command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' 2>/dev/null; then
  exit 0
fi
apt_install "the checks and the tests' tools need Python 3 with its venv module" python3 python3-venv
