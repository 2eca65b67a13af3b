# `make test` is the one command that runs every check; CI runs exactly it.
CARGO ?= cargo

.PHONY: test deps fmt clippy unit benches-compile check-alerts check-metrics interop demo bench soak soak-activity

test: deps fmt clippy unit benches-compile check-alerts check-metrics interop

deps:
	bash scripts/install-test-deps.sh

fmt:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

# Benches are not run here, but they must keep compiling.
benches-compile:
	$(CARGO) bench --no-run

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

# Every figure of BENCHMARKS.md: criterion benches (scrape in process and over
# loopback, refresh, record parsing, checkpoint), then the release binary's
# size, start-up, RSS at 1 and 1,000 tenants, a real 1,000-tenant scrape,
# and a shortened soak; then a 300,000-record audit catch-up.
bench:
	$(CARGO) bench
	$(CARGO) build --release --bin m365-exporter --example soak_sim
	python3 scripts/bench-runtime.py target/release/m365-exporter --soak-minutes 3
	bash scripts/soak-activity.sh target/release/m365-exporter 300000 240

# RSS over 30 minutes: 50 tenants every 2 s, 5 with the audit feed, faults on.
soak:
	$(CARGO) build --release --bin m365-exporter
	python3 scripts/bench-runtime.py target/release/m365-exporter --soak-minutes 30

# A 7-day catch-up of 1,000,000 audit records, measured (wall, CPU, peak RSS,
# checkpoint bytes, exactly-once); minutes, so not part of `make test`.
soak-activity:
	$(CARGO) build --release --bin m365-exporter --example soak_sim
	bash scripts/soak-activity.sh target/release/m365-exporter
