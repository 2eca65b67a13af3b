# `make test` is the one command that runs every check; CI runs exactly it.
CARGO ?= cargo

.PHONY: test deps fmt clippy unit check-alerts check-metrics interop demo bench fuzz

test: deps fmt clippy unit check-alerts check-metrics interop

deps:
	bash scripts/install-test-deps.sh

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

check-alerts:
	bash scripts/check-alerts.sh

check-metrics:
	$(CARGO) build
	bash scripts/check-metrics.sh target/debug/m365-exporter

# The exporter against an independent fake of Microsoft's formats (Python).
interop:
	$(CARGO) build
	bash tests/interop/run.sh target/debug/m365-exporter

demo:
	$(CARGO) run --release -- demo

bench:
	$(CARGO) bench

# cargo-fuzz on nightly, every target FUZZ_SECONDS (default 60) each; not part of
# `make test` (tests/garbage_input.rs is its stable smoke run).
fuzz:
	bash scripts/fuzz.sh
