#!/usr/bin/env bash
# `make bench`'s whole-process figures: `baton run` start to exit, release build, on a local
# CodeCommit source, each action one `true` command (a Commands action, as a build runs):
#   W1: a source, then 40 sequential stages of one action
#   W3: a source, then one stage of 50 parallel actions, then a join
#   W0: a source, then one stage of one action, to leave the process's own start out of W1's
#   cost per action
# The median of 5 runs each, beside the floor: what spawning `true` itself costs here.
# Prints `name: value unit` lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet -p baton-cli
baton=$root/target/release/baton
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export BATON_HOME=$work/home CI=true
repo=$BATON_HOME/git/app
mkdir -p "$repo"
echo hello > "$repo/README"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@baton.invalid commit -q -m bench

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
source = {"name": "Source", "actions": [{"name": "Checkout", "outputArtifacts": [{"name": "Src"}],
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
          "configuration": {"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "false"}}]}
def step(name):
    return {"name": name, "commands": ["true"], "inputArtifacts": [{"name": "Src"}],
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}}
def pipeline(name, stages):
    return {"pipeline": {"name": name, "roleArn": "arn:aws:iam::111111111111:role/bench",
            "pipelineType": "V2", "executionMode": "QUEUED",
            "artifactStore": {"type": "S3", "location": "bench"}, "stages": [source] + stages}}
w1 = [{"name": f"S{i:02d}", "actions": [step("Step")]} for i in range(1, 41)]
w0 = w1[:1]
w3 = [{"name": "Fan", "actions": [step(f"P{i:02d}") for i in range(50)]},
      {"name": "Join", "actions": [step("Join")]}]
json.dump(pipeline("w0", w0), open(f"{work}/w0.json", "w"))
json.dump(pipeline("w1", w1), open(f"{work}/w1.json", "w"))
json.dump(pipeline("w3", w3), open(f"{work}/w3.json", "w"))
PY

# Seconds `$@` takes, the median of 5 runs after one to warm the caches.
median() {
  "$@" >/dev/null 2>&1
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    echo $(( $(date +%s%N) - start ))
  done | sort -n | sed -n 3p | awk '{printf "%.3f", $1 / 1e9}'
}
spawn_true() { for _ in $(seq 100); do /bin/true; done; }

cd "$work"
w0=$(median "$baton" run w0.json)
w1=$(median "$baton" run w1.json)
w3=$(median "$baton" run w3.json)
floor=$(median spawn_true | awk '{printf "%.2f", $1 * 1000 / 100}')
# Per action: W1's 39 more actions than W0 (a source and one step), so the process's start,
# the source and the exit are left out.
per_action=$(awk -v a="$w1" -v b="$w0" 'BEGIN {printf "%.2f", (a - b) * 1000 / 39}')
echo "w1_whole_process: $w1 s"
echo "w1_one_stage_whole_process: $w0 s"
echo "w1_per_action: $per_action ms"
echo "w1_overhead_per_action: $(awk -v p="$per_action" -v f="$floor" 'BEGIN {printf "%.2f", p - f}') ms"
echo "w1_overhead_per_action.goal: 1.00 ms"
echo "w3_whole_process: $w3 s"
echo "floor_spawn_true: $floor ms"
