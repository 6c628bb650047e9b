#!/usr/bin/env bash
# Local AWS for the tests: moto's server (DynamoDB, S3, KMS, EventBridge, SNS, SQS, STS,
# CloudFormation) on loopback, from a pinned version in a virtualenv this script creates.
#   emulators.sh install | install-lambda | start | stop | env
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
EMU_DIR=${EMU_DIR:-$root/target/emu}
MOTO_PORT=${MOTO_PORT:-5055}
# 5.2.1 answers CompleteMultipartUpload with a root element the Rust SDK rejects; 5.2.5 fixes it.
MOTO_VERSION=5.2.5
CFN_LINT_VERSION=1.58.0
AIOSMTPD_VERSION=1.4.6
AWSCLI_VERSION=1.46.3
SELENIUM_VERSION=4.50.0
mkdir -p "$EMU_DIR"

# Everything the tests talk to, pinned: the AWS emulator, the template linter, an SMTP server that
# receives approval mail, the AWS CLI and boto3 that call the control API, and Selenium, which
# drives Debian's headless Chromium through the approval page.
requirements() {
  printf '%s\n' "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" \
    "aiosmtpd==$AIOSMTPD_VERSION" "awscli==$AWSCLI_VERSION" "selenium==$SELENIUM_VERSION"
}

install() {
  local stamp="$EMU_DIR/venv/.requirements"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(requirements)" ]; then
    [ -x "$EMU_DIR/venv/bin/pip" ] || python3 -m venv "$EMU_DIR/venv"
    requirements >"$EMU_DIR/requirements.txt"
    "$EMU_DIR/venv/bin/pip" install -q --disable-pip-version-check -r "$EMU_DIR/requirements.txt"
    requirements >"$stamp"
  fi
}

# cargo-lambda packages the functions (make build); it brings its own zig linker from PyPI.
install_lambda() {
  install
  [ -x "$EMU_DIR/venv/bin/cargo-lambda" ] || "$EMU_DIR/venv/bin/pip" install -q --disable-pip-version-check "cargo-lambda==1.9.2"
}

wait_http() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not come up on 127.0.0.1:$1; see $EMU_DIR/$2.log" >&2
  return 1
}

start() {
  install
  stop
  "$EMU_DIR/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$EMU_DIR/moto.log" 2>&1 &
  echo $! >"$EMU_DIR/moto.pid"
  wait_http "$MOTO_PORT" moto
}

stop() {
  if [ -f "$EMU_DIR/moto.pid" ]; then
    kill "$(cat "$EMU_DIR/moto.pid")" 2>/dev/null || true
    rm -f "$EMU_DIR/moto.pid"
  fi
}

env_() {
  echo "export BATON_TEST_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
}

case "${1:-}" in
  install) install ;;
  install-lambda) install_lambda ;;
  start) start ;;
  stop) stop ;;
  env) env_ ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
