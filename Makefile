# `make test` is the one command that runs every check; CI runs exactly it.
CARGO ?= cargo

.PHONY: test deps fmt clippy unit check-alerts check-metrics interop demo bench bench-tenants

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

# Memory per tenant and first-refresh spread at 1 and 1,000 tenants (release build).
bench-tenants:
	bash scripts/bench-tenants.sh 1 1000
