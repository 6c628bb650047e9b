#!/usr/bin/env python3
"""Fails when an arrow the architecture forbids appears (see ARCHITECTURE.md).

Two levels: between the workspace's crates (read from `cargo metadata`), and between the layers
that still share the `baton` crate under shared/src (read from its `crate::` paths), until each
layer is a crate of its own and the compiler keeps the rule.
"""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Crate -> the workspace crates it may depend on (normal and build dependencies).
CRATES = {
    "baton-core": set(),
    "baton-protocol": {"baton-core"},
    "baton": {"baton-core", "baton-protocol"},
    # Dev-dependency only: checked below, not shipped in any crate.
    "baton-testkit": {"baton", "baton-core", "baton-protocol"},
    "baton-cli": {"baton", "baton-core", "baton-protocol"},
    "trigger": {"baton", "baton-core", "baton-protocol"},
    "stage-advance": {"baton", "baton-core", "baton-protocol"},
    "action-worker": {"baton", "baton-core", "baton-protocol"},
    "approval": {"baton", "baton-core", "baton-protocol"},
    "api": {"baton", "baton-core", "baton-protocol"},
    "baton-e2e": {"baton", "baton-core", "baton-protocol"},
}

# Layer of the baton crate (a folder or file under shared/src) -> the layers it may name with
# `crate::`. The ports and services know no adapter, provider or runtime; the API knows no
# runtime; local adapters and providers know nothing of AWS.
LAYERS = {
    "ports": {"ports", "bus_events"},
    "service": {"service", "ports", "bus_events", "routing"},
    "api": {"api", "service", "ports", "bus_events"},
    "adapters/local": {"adapters", "ports", "bus_events", "routing"},
    "providers/local": {"providers", "ports"},
}
# AWS providers get credentials through their port (providers/aws/credentials.rs), not from
# the STS adapter: of the adapters they may use only the SDK's configuration helpers.
AWS_PROVIDERS = "providers/aws"
ADAPTER_BUT_SDK = re.compile(r"crate::adapters::aws::(?!sdk\b)\w+")
# What a local layer may not reach inside `adapters` and `providers`.
NOT_AWS = re.compile(r"crate::(adapters|providers)::aws\b")


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
    src = ROOT / "shared" / "src"
    broken = []
    for layer, allowed in LAYERS.items():
        base = src / layer
        files = [base.with_suffix(".rs")] if base.with_suffix(".rs").exists() else []
        files += sorted(base.rglob("*.rs")) if base.is_dir() else []
        for f in files:
            if f.name == "tests.rs":
                continue  # a layer's tests may set up a runtime around it
            text = f.read_text()
            # Code under #[cfg(test)] at the end of a file is its tests.
            text = text.split("#[cfg(test)]\nmod tests", 1)[0]
            for m in re.finditer(r"crate::([a-z_]+)", text):
                if m.group(1) not in allowed:
                    broken.append(f"{f.relative_to(ROOT)} uses crate::{m.group(1)}: the {layer} layer may use only {sorted(allowed)}")
            if layer.endswith("/local") and NOT_AWS.search(text):
                broken.append(f"{f.relative_to(ROOT)} reaches AWS code from a local layer")
    for f in sorted((src / AWS_PROVIDERS).rglob("*.rs")):
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
