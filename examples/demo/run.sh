#!/usr/bin/env bash
# `make run`: sets up the demo application's repository in the Baton home, then runs the
# example release pipeline on it. On a terminal the approval waits for you; otherwise (CI=true
# or no terminal) the demo approves itself through the CLI, from another process.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
baton=${BATON:-$root/target/debug/baton}
export BATON_HOME=${BATON_HOME:-$root/.baton}
repo=$BATON_HOME/git/demo-app

if [ ! -d "$repo/.git" ]; then
  mkdir -p "$repo"
  cp -R "$root/examples/demo/app/." "$repo/"
  git -C "$repo" init -q -b main
  git -C "$repo" add -A
  git -C "$repo" -c user.name="Baton demo" -c user.email="demo@baton.invalid" commit -q -m "Demo app: a static page and a greeting"
  echo "Created the demo repository $repo"
fi
[ -f "$BATON_HOME/baton.toml" ] || cp "$root/examples/demo/baton.toml" "$BATON_HOME/baton.toml"

if [ -t 0 ] && [ -t 1 ] && [ "${CI:-}" != "true" ]; then
  echo "When the pipeline reaches the approval, approve it from another terminal:"
  echo "  BATON_HOME=$BATON_HOME $baton approve release Approve ReleaseGate"
  exec "$baton" run "$root/examples/release-pipeline.json"
fi

approve_when_waiting() {
  for _ in $(seq 1 1200); do
    if "$baton" status release 2>/dev/null | grep -q "approval Approve/ReleaseGate is waiting"; then
      echo "demo: not on a terminal, so approving Approve/ReleaseGate through the CLI"
      "$baton" approve release Approve ReleaseGate --summary "Approved by the non-interactive demo" || true
      return
    fi
    sleep 0.5
  done
}
approve_when_waiting &
approver=$!
trap 'kill $approver 2>/dev/null || true' EXIT
status=0
"$baton" run "$root/examples/release-pipeline.json" || status=$?
echo "Deployed sites: $BATON_HOME/s3/demo-site-us-east-1 and $BATON_HOME/s3/demo-site-us-west-2"
echo "To see it in a browser: $baton --home $BATON_HOME serve, then open http://127.0.0.1:8642/"
exit $status
