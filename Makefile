# Baton: the two commands a new user needs are `make run` and `make test`.
.PHONY: run test lint bench validate build clean

CARGO ?= cargo

## run: set up a demo repository and run the example release pipeline on it, for real
run:
	$(CARGO) build --quiet -p baton-cli
	bash examples/demo/run.sh

## test: formatting, lints and every test of the workspace
test: lint
	$(CARGO) test --workspace

## lint: rustfmt and clippy, warnings denied
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## bench: measured figures, one per line as `name: value unit`
bench:
	@$(CARGO) bench --quiet -p baton-core --bench engine 2>/dev/null
	@$(CARGO) bench --quiet -p baton --bench embedded 2>/dev/null

## validate: check every example and fixture declaration
validate:
	$(CARGO) run --quiet -p baton-cli -- validate examples/*.json tests/fixtures/declarations/valid/*.json

build:
	$(CARGO) build --release -p baton-cli

clean:
	$(CARGO) clean
