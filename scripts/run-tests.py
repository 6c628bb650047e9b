#!/usr/bin/env python3
"""Runs the workspace's test binaries side by side, as `cargo test --workspace` would one after
another: each from its package's folder, with the two variables of cargo's the tests read
(CARGO, CARGO_MANIFEST_DIR), and the doc tests beside them. The binaries spend half their time
waiting on the processes and servers they drive, so on two cores running them together takes
about half as long. Each binary's output is printed whole when it ends; the exit status is
non-zero if any failed.

    run-tests.py [ARGS...]   ARGS go to every test binary (a name filter, --nocapture, ...)
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

CARGO = os.environ.get("CARGO", "cargo")


def test_binaries():
    """Builds the tests (nothing, if `make test` just did) and lists them as cargo reports them."""
    build = subprocess.run(
        [CARGO, "test", "--workspace", "--no-run", "--message-format=json-render-diagnostics"],
        stdout=subprocess.PIPE,
        text=True,
    )
    if build.returncode != 0:
        sys.exit(build.returncode)
    binaries = []
    for line in build.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
            binaries.append(message)
    return binaries


def run_binary(message, args):
    package_dir = os.path.dirname(message["manifest_path"])
    source = os.path.relpath(message["target"]["src_path"], package_dir)
    env = dict(os.environ, CARGO=CARGO, CARGO_MANIFEST_DIR=package_dir)
    started = time.monotonic()
    done = subprocess.run([message["executable"], *args], cwd=package_dir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    header = f"     Running {source} ({os.path.relpath(message['executable'])}) in {time.monotonic() - started:.1f}s"
    return done.returncode, header, done.stdout


def run_doc_tests(args):
    started = time.monotonic()
    done = subprocess.run([CARGO, "test", "--workspace", "--doc", "--", *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, f"   Doc-tests of the workspace in {time.monotonic() - started:.1f}s", done.stdout


def main():
    args = sys.argv[1:]
    binaries = test_binaries()
    failed = []
    with ThreadPoolExecutor(max_workers=len(binaries) + 1) as pool:
        runs = {pool.submit(run_binary, b, args): os.path.basename(b["executable"]) for b in binaries}
        runs[pool.submit(run_doc_tests, args)] = "doc tests"
        for run in as_completed(runs):
            status, header, output = run.result()
            print(header, output, sep="\n", flush=True)
            if status != 0:
                failed.append(runs[run])
    if failed:
        print(f"error: {len(failed)} test binaries failed: {', '.join(sorted(failed))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
