# `make test` is the one command that runs every check; CI runs exactly it.
CARGO ?= cargo

.PHONY: test deps fmt clippy unit check-alerts check-metrics interop demo bench soak-activity

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

# A 7-day catch-up of 1,000,000 audit records, measured (wall, CPU, peak RSS,
# checkpoint bytes, exactly-once); minutes, so not part of `make test`.
soak-activity:
	$(CARGO) build --release --bin m365-exporter --example soak_sim
	bash scripts/soak-activity.sh target/release/m365-exporter
