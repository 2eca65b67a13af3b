# `make test` is the one command that runs every check; CI runs exactly it.
CARGO ?= cargo

.PHONY: test deps fmt clippy unit benches-compile check-alerts check-metrics interop image static demo bench bench-quick bench-tenants bench-tenants-30 soak heap-profile soak-activity soak-chaos bench-auth-flood fuzz

test: deps fmt clippy unit benches-compile check-alerts check-metrics interop image

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

# The static binary the container image holds: glibc linked in (+crt-static),
# its own target dir (other RUSTFLAGS would rebuild the normal one).
STATIC_TARGET := x86_64-unknown-linux-gnu
STATIC_BIN := target/static/$(STATIC_TARGET)/debug/m365-exporter
static:
	RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
		$(CARGO) build --target $(STATIC_TARGET) --bin m365-exporter

# Build the image from that binary with podman, run demo in it, scrape it.
image: static
	bash tests/image/run.sh $(STATIC_BIN)

demo:
	$(CARGO) run --release -- demo

# Every figure of BENCHMARKS.md: criterion benches (scrape in process and over
# loopback, refresh, record parsing, checkpoint), then the release binary's
# size, start-up, RSS at 1 and 1,000 tenants, a real 1,000-tenant scrape,
# and a shortened soak; the server's CPU per scrape (plain, gzip) at 200 and
# 1,000 tenants over loopback with curl; then a 300,000-record audit catch-up of
# realistic 1-3 KB records (CPU-s per million, wall against the request budget).
# Every figure of BENCHMARKS.md (about an hour: it includes the 30-minute soak
# and the 1 M / 3 M-record catch-ups); `make bench-quick` is the short set.
bench: bench-quick soak-activity bench-tenants bench-tenants-30 soak

bench-quick:
	$(CARGO) bench
	$(CARGO) build --release --bin m365-exporter --example soak_sim
	python3 scripts/bench-runtime.py target/release/m365-exporter --soak-minutes 3
	python3 scripts/bench-scrape.py target/release/m365-exporter --tenants 200,1000
	bash scripts/soak-activity.sh target/release/m365-exporter 300000 240

# RSS over 30 minutes: 50 tenants every 2 s, 5 with the audit feed, faults on.
soak:
	$(CARGO) build --release --bin m365-exporter
	python3 scripts/bench-runtime.py target/release/m365-exporter --soak-minutes 30 --soak-only

# Memory per tenant and first-refresh spread at 1 and 1,000 tenants (release build).
bench-tenants:
	bash scripts/bench-tenants.sh 1 1000

# RSS of 1,000 tenants for 30 minutes after ready, every 30 s, per tenant
# against one (flat memory: the allocator keeps no creeping fragments).
bench-tenants-30:
	$(CARGO) build --release --bin m365-exporter
	python3 scripts/bench-runtime.py target/release/m365-exporter --tenants 1000 --tenant-minutes 30

# Where a tenant's heap goes: dhat profiles of 1 and 1,000 tenants compared
# (dhat-heap-1.json, dhat-heap-1000.json in the current directory).
heap-profile:
	$(CARGO) build --release --bin m365-exporter
	$(CARGO) build --profile dhat --features dhat-heap --bin m365-exporter
	python3 scripts/bench-runtime.py target/release/m365-exporter --heap-profile target/dhat/m365-exporter --tenants 1000

# A valid scrape's latency during a flood of wrong passwords (TLS, bcrypt
# cost 10), release binary; measured processes at nice -10 so that other
# work on a shared machine disturbs less (needs root for a negative nice).
bench-auth-flood:
	$(CARGO) build --release --bin m365-exporter
	nice -n -10 python3 scripts/bench-auth-flood.py target/release/m365-exporter

# A 7-day catch-up of 300,000, 1,000,000 and 3,000,000 audit records (peak RSS
# at any backlog size: the 3 M run goes past the 1 M dedupe cap), measured
# (wall, CPU, peak RSS, checkpoint bytes, exactly-once); minutes, so not part
# of `make test`. The 3 M run needs ~3 GB of RAM for the simulator and ~1.3 GB
# of /tmp for the sink.
soak-activity:
	$(CARGO) build --release --bin m365-exporter --example soak_sim
	bash scripts/soak-activity.sh target/release/m365-exporter 300000 240
	bash scripts/soak-activity.sh target/release/m365-exporter 1000000 400
	bash scripts/soak-activity.sh target/release/m365-exporter 3000000 400

# The audit feed under every fault at once for 10 minutes (SOAK_CHAOS_MINUTES),
# a live feed and a kill -9 halfway, on the release binary: exactly-once,
# counts, bounded backlog, lag, flat RSS (tests/soak_chaos.rs; its 1-minute
# version runs in `make test`). Prints the figures BENCHMARKS.md quotes.
soak-chaos:
	$(CARGO) build --release --bin m365-exporter
	SOAK_CHAOS_EXPORTER=$(CURDIR)/target/release/m365-exporter \
		$(CARGO) test --test soak_chaos -- --nocapture chaos_soak

# cargo-fuzz on nightly, every target FUZZ_SECONDS (default 60) each; not part of
# `make test` (tests/fuzz_corpus.rs and tests/garbage_input.rs are its stable smoke run).
fuzz:
	bash scripts/fuzz.sh
