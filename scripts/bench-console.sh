#!/usr/bin/env bash
# `make bench`'s console figures: a build that prints a 10 MB log (104,000 lines, each in part in
# colour), then the time `baton serve` takes to answer its log page (the last 1,000 lines drawn
# as HTML, colours rendered) and the whole log as text, each the median of 7 requests over
# loopback, whole process, release build. Prints `name: value unit` lines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet -p baton-cli
baton=$root/target/release/baton
home=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$home"' EXIT
server=""

repo=$home/git/app
mkdir -p "$repo"
cat > "$repo/buildspec.yml" <<'SPEC'
version: 0.2
phases:
  build:
    commands:
      - python3 -c "import sys; w = sys.stdout.write; [w('%06d \x1b[32mok\x1b[0m compiling module %d of the application, with a line as long as a real one\n' % (i, i)) for i in range(104000)]"
SPEC
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@baton.invalid commit -q -m bench
cat > "$home/pipeline.json" <<'JSON'
{"name": "app", "roleArn": "arn:aws:iam::111111111111:role/p",
 "artifactStore": {"type": "S3", "location": "artifacts"},
 "stages": [
  {"name": "Source", "actions": [{"name": "Checkout",
    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
    "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "Src"}]}]},
  {"name": "Build", "actions": [{"name": "Compile",
    "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
    "configuration": {"ProjectName": "app"}, "inputArtifacts": [{"name": "Src"}]}]}]}
JSON
id=$(CI=true "$baton" --home "$home" --output json run "$home/pipeline.json" 2>/dev/null \
  | python3 -c "import json, sys; print(json.load(sys.stdin)['pipelineExecution']['pipelineExecutionId'])")
log=$(ls "$home"/logs/app/"$id"/Build.Compile.*.log)

"$baton" --home "$home" --output json serve --port 0 2>/dev/null > "$home/ready" &
server=$!
for _ in $(seq 1 100); do [ -s "$home/ready" ] && break; sleep 0.1; done
endpoint=$(python3 -c "import json, sys; print(json.loads(open(sys.argv[1]).readline())['endpoint'])" "$home/ready")

python3 - "$endpoint/pipelines/app/executions/$id/logs/Build/Compile" "$log" <<'PY'
import os, statistics, sys, time, urllib.request
url, log = sys.argv[1], sys.argv[2]
def median_ms(u):
    times = []
    for _ in range(7):
        start = time.perf_counter()
        with urllib.request.urlopen(u) as r:
            body = r.read()
        times.append((time.perf_counter() - start) * 1000)
        assert r.status == 200 and body, u
    return statistics.median(times), len(body)
page, page_bytes = median_ms(url)
raw, raw_bytes = median_ms(url + "?raw")
assert raw_bytes == os.path.getsize(log), "the raw log is the whole file"
print(f"console_log_size: {os.path.getsize(log) / 1e6:.1f} MB")
print(f"console_log_page_10mb: {page:.1f} ms")
print(f"console_log_page_10mb_html: {page_bytes / 1e3:.0f} kB")
print(f"console_log_raw_10mb: {raw:.1f} ms")
PY
