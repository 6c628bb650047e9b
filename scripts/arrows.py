#!/usr/bin/env python3
"""Fails when an arrow the architecture forbids appears (see ARCHITECTURE.md).

Between the workspace's crates the arrows are read from `cargo metadata`; inside a crate, two
rules the compiler cannot keep are read from paths: the ports know no service, and the AWS
providers reach AWS only through their ports and the SDK's configuration helpers.
"""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

CORE = {"baton-core", "baton-protocol"}
# Crate -> the workspace crates it may depend on (normal and build dependencies). The app knows
# no host and no API; the API knows no runtime; the local runtime may take the AWS providers
# (an [aws] section); the AWS crate takes the API only for the Lambda glue (the API function).
CRATES = {
    "baton-core": set(),
    "baton-protocol": {"baton-core"},
    "baton-app": CORE,
    "baton-api": CORE | {"baton-app"},
    "baton-local": CORE | {"baton-app", "baton-api", "baton-aws"},
    "baton-aws": CORE | {"baton-app", "baton-api"},
    # The assembly: every layer under one set of paths, no code of its own.
    "baton": CORE | {"baton-app", "baton-api", "baton-local", "baton-aws"},
    # Dev-dependency only: checked below, not shipped in any crate.
    "baton-testkit": CORE | {"baton"},
    "baton-cli": CORE | {"baton"},
    "trigger": CORE | {"baton"},
    "stage-advance": CORE | {"baton"},
    "action-worker": CORE | {"baton"},
    "approval": CORE | {"baton"},
    "api": CORE | {"baton"},
    "baton-e2e": CORE | {"baton"},
}

# Folder of a crate -> the `crate::` modules its code may name.
LAYERS = {
    "shared/app/src/ports": {"ports"},
}
# AWS providers get credentials through their port (providers/credentials.rs), not from the
# STS adapter: of the adapters they may use only the SDK's configuration helpers.
AWS_PROVIDERS = "shared/aws/src/providers"
ADAPTER_BUT_SDK = re.compile(r"crate::adapters::(?!sdk\b)\w+")


def crate_arrows():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    packages = json.loads(out)["packages"]
    ours = {p["name"] for p in packages}
    broken = []
    for p in packages:
        name = p["name"]
        if name not in CRATES:
            broken.append(f"crate {name} is not in the architecture: add it to scripts/arrows.py and ARCHITECTURE.md")
            continue
        for d in p["dependencies"]:
            if d["name"] in ours and d["kind"] != "dev" and d["name"] not in CRATES[name]:
                broken.append(f"crate {name} depends on {d['name']}, which the architecture forbids")
            if d["name"] == "baton-testkit" and d["kind"] != "dev":
                broken.append(f"crate {name} ships the test kit: make baton-testkit a dev-dependency")
    return broken


# The Lambda functions link no embedded runtime: no SQLite in what they are built from.
FUNCTIONS = ["trigger", "stage-advance", "action-worker", "approval", "api"]


def runtime_arrows():
    broken = []
    for f in FUNCTIONS:
        tree = subprocess.run(
            ["cargo", "tree", "-p", f, "-e", "normal", "--prefix", "none"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
        if re.search(r"^rusqlite ", tree, re.M):
            broken.append(f"the {f} function links rusqlite: it must use baton without the `local` feature")
    return broken


def layer_arrows():
    broken = []
    for layer, allowed in LAYERS.items():
        for f in sorted((ROOT / layer).rglob("*.rs")):
            text = f.read_text().split("#[cfg(test)]\nmod tests", 1)[0]
            for m in re.finditer(r"crate::([a-z_]+)", text):
                if m.group(1) not in allowed:
                    broken.append(f"{f.relative_to(ROOT)} uses crate::{m.group(1)}: {layer} may use only {sorted(allowed)}")
    for f in sorted((ROOT / AWS_PROVIDERS).rglob("*.rs")):
        code = "\n".join(l for l in f.read_text().splitlines() if not l.lstrip().startswith("//"))
        for m in ADAPTER_BUT_SDK.finditer(code):
            broken.append(f"{f.relative_to(ROOT)} uses {m.group(0)}: AWS providers reach adapters through their ports")
    return broken


def main():
    broken = crate_arrows() + runtime_arrows() + layer_arrows()
    for b in broken:
        print(f"arrows: {b}")
    if broken:
        sys.exit(1)
    print(f"arrows: {len(CRATES)} crates and {len(LAYERS)} layers keep the architecture; no function links SQLite")


if __name__ == "__main__":
    main()
