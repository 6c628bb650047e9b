# Baton: the two commands a new user needs are `make run` and `make test`.
.PHONY: run test lint checks fast-checks bench validate build deploy clean tidy

CARGO ?= cargo
# Where rustup installs Rust (scripts/rust.sh does, on a machine that has none).
export PATH := $(HOME)/.cargo/bin:$(PATH)
# run and test build the whole project at once: incremental caches (1.7 GB of target/ after
# both, measured) would only speed up a later edit of one crate, which `cargo` run by hand
# still caches as usual.
export CARGO_INCREMENTAL ?= 0
EMULATORS := scripts/emulators.sh
VENV := target/emu/venv
CFN_LINT := $(VENV)/bin/cfn-lint template.yaml infra/*.yaml

## run: set up a demo repository and run the example release pipeline on it, for real
run:
	@bash scripts/rust.sh
	@echo "make run: builds baton (the first build takes about 3 minutes on 2 cores, later ones seconds), then runs examples/release-pipeline.json on a demo repository under .baton/"
	@# Built as `make test` builds it (clippy-driver compiling the workspace's crates, where clippy
	@# is installed), so that one reuses this build and this one that build.
	@if command -v clippy-driver >/dev/null 2>&1; then export $(CLIPPY_BUILD); fi; \
	  echo "$(CARGO) build -p baton-cli"; $(CARGO) build -p baton-cli
	bash examples/demo/run.sh

## test: formatting, the architecture's arrows, cfn-lint, then every test of the workspace, built
## with clippy's lints (warnings denied), with local AWS (moto), an SMTP server and headless
## Chromium, all on loopback. The Python tools and Chromium install while cargo builds, and the
## test binaries run side by side (scripts/run-tests.py): `cargo test` would run them one by one.
## The benchmarks are not built (each would link the workspace again): the tests compile their
## code as modules and run it small, so `make lint` and `make bench` find them green.
test: fast-checks
	@mkdir -p target && { bash scripts/browser.sh && bash $(EMULATORS) install; } >target/test-setup.log 2>&1 & setup=$$!; \
	  $(CLIPPY_BUILD) $(CARGO) build --workspace --lib --bins --tests; built=$$?; \
	  if ! wait $$setup; then cat target/test-setup.log >&2; exit 1; fi; exit $$built
	$(CFN_LINT)
	@bash $(EMULATORS) start && trap 'bash $(EMULATORS) stop' EXIT && \
	  eval "$$(bash $(EMULATORS) env)" && $(CLIPPY_BUILD) python3 scripts/run-tests.py

# clippy's lints run inside the test build: clippy-driver compiles the workspace's own crates
# (as `cargo clippy` has it do), so the dependencies are compiled once, for the tests, instead of
# once more in `cargo clippy`'s check mode, which cost 3 minutes and half a gigabyte cold.
CLIPPY_BUILD := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

## lint: the checks below, and clippy on its own (warnings denied)
lint: checks
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## checks: rustfmt, the architecture's arrows (ARCHITECTURE.md), cfn-lint on template.yaml and
## infra/
checks: fast-checks
	@bash $(EMULATORS) install
	$(CFN_LINT)

# The checks that need nothing installed but Rust and Python, so they fail in seconds.
fast-checks:
	@bash scripts/rust.sh
	@bash scripts/python.sh
	$(CARGO) fmt --all --check
	python3 scripts/arrows.py

## bench: measured figures, one per line as `name: value unit`. The AWS release runs twice
## and the second run is reported; each run asks moto's CloudFormation once before the
## release, as moto loads a service on its first request (a second, billed to no function).
bench:
	@$(CARGO) bench --quiet -p baton-core --bench engine 2>/dev/null
	@$(CARGO) bench --quiet -p baton --bench embedded 2>/dev/null
	@bash scripts/bench-run.sh
	@bash scripts/bench-console.sh
	@$(MAKE) --no-print-directory build ARCH=x86_64 >/dev/null 2>&1
	@bash $(EMULATORS) start && trap 'bash $(EMULATORS) stop' EXIT && \
	  eval "$$(bash $(EMULATORS) env)" && \
	  BATON_E2E_PACKAGES=1 $(CARGO) test --quiet -p baton-e2e --test e2e a_release_runs_across_accounts_and_regions >/dev/null 2>&1 && \
	  BATON_E2E_PACKAGES=1 $(CARGO) test --quiet -p baton-e2e --test e2e a_release_runs_across_accounts_and_regions >/dev/null 2>&1 && \
	  cat target/e2e-figures.txt

## validate: check every example and fixture declaration
validate:
	$(CARGO) run --quiet -p baton-cli -- validate examples/*.json tests/fixtures/declarations/valid/*.json

## build: package the five Lambda functions with cargo-lambda for ARCH (arm64, as template.yaml
## deploys them by default; ARCH=x86_64 for packages this machine can run) and print their sizes
ARCH ?= arm64
FUNCTIONS := trigger stage-advance action-worker approval api
build:
	@bash $(EMULATORS) install-lambda
	@if [ "$(ARCH)" = arm64 ]; then rustup target add aarch64-unknown-linux-gnu >/dev/null; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release \
	  $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix -p ,$(FUNCTIONS))
	@for f in target/lambda/*/bootstrap; do \
	  n=$$(basename $$(dirname $$f)); \
	  z=$$(python3 -c "import io,sys,zipfile; b=io.BytesIO(); z=zipfile.ZipFile(b,'w',zipfile.ZIP_DEFLATED); z.write(sys.argv[1],'bootstrap'); z.close(); print(len(b.getvalue())//1024)" $$f); \
	  echo "package_$$n: $$z KiB zipped ($$(du -k $$f | cut -f1) KiB unzipped)"; done

## deploy: build template.yaml's functions the SAM way (cargo-lambda, for its Architecture) and
## deploy it: guided the first time (which writes samconfig.toml), from samconfig.toml after;
## see infra/README.md
deploy:
	sam build
	if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi

clean:
	$(CARGO) clean

## tidy: give back the disk days of builds take (incremental caches grow by gigabytes an hour of
## work; test binaries of past builds stay), keeping the dependencies' builds; cargo rebuilds
## what a later command needs
tidy:
	rm -rf target/debug/incremental
	find target/debug/deps -maxdepth 1 -type f -perm -u+x -mmin +60 ! -name '*.so' ! -name '*.d' -delete
	@du -sh target 2>/dev/null || true
