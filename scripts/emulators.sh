#!/usr/bin/env bash
# Local AWS for the tests: moto's server (DynamoDB, S3, KMS, EventBridge, SNS, SQS, STS,
# CloudFormation) on loopback, from a pinned version in a virtualenv this script creates.
#   emulators.sh install | install-lambda | start | stop | env
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
EMU_DIR=${EMU_DIR:-$root/target/emu}
MOTO_PORT=${MOTO_PORT:-5055}
PYTHON_DIR=$root/scripts/python
mkdir -p "$EMU_DIR"

# Installs a lock of scripts/python (every package pinned with its hashes) into the virtualenv,
# once per version of the lock.
install_lock() {
  local lock="$PYTHON_DIR/$1" stamp="$EMU_DIR/venv/.$1"
  if [ ! -f "$stamp" ] || ! cmp -s "$lock" "$stamp"; then
    if [ ! -x "$EMU_DIR/venv/bin/pip" ]; then
      bash "$root/scripts/python.sh"
      python3 -m venv "$EMU_DIR/venv"
    fi
    "$EMU_DIR/venv/bin/pip" install -q --no-compile --disable-pip-version-check --require-hashes -r "$lock"
    gzip_cli_models
    cp "$lock" "$stamp"
  fi
}

# The AWS CLI carries its own botocore, with every service's model as plain JSON: 124 of the
# virtualenv's 400 MB. botocore reads a model gzipped as well (its own package ships them so),
# so they are kept gzipped: about 20 MB, every service still there.
gzip_cli_models() {
  local data
  for data in "$EMU_DIR"/venv/lib/python3*/site-packages/awscli/botocore/data; do
    [ -d "$data" ] && find "$data" -mindepth 3 -name '*.json' -exec gzip -f {} +
  done
  return 0
}

# moto_server with DynamoDB's atomic requests (scripts/moto-server.py says why), as a command
# the IAM scenarios can start too.
MOTO=$EMU_DIR/moto-server
write_moto() {
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$EMU_DIR/venv/bin/python" "$root/scripts/moto-server.py" >"$MOTO"
  chmod +x "$MOTO"
}

# The emulator, the linter, the mail server, the AWS CLI and Selenium
# (scripts/python/requirements.in says why each).
install() {
  install_lock requirements.txt
  write_moto
}

install_lambda() {
  install
  install_lock lambda.txt
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
  "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$EMU_DIR/moto.log" 2>&1 &
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
  # Scenarios with IAM enforced start a moto of their own (enforcement is server-wide).
  echo "export BATON_TEST_MOTO_SERVER=$MOTO"
}

case "${1:-}" in
  install) install ;;
  install-lambda) install_lambda ;;
  start) start ;;
  stop) stop ;;
  env) env_ ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
