# tinymon — see README.md.
#   make run    build and start the service on :8080 (no Docker needed)
#   make test   every test; installs Debian's prometheus (promtool) when root
#   make build  static, stripped release binary
#   make bench  criterion benches of the encoder and observe path

CARGO  ?= cargo
TARGET := x86_64-unknown-linux-gnu
STATIC := -C target-feature=+crt-static
BIN    := target/$(TARGET)/release/tinymon
ARGS   ?=

.PHONY: run build test deps fuzz fuzz-deps fuzz-smoke bench bench-http image up down logs fmt clippy clean

run:
	$(CARGO) run --release -- $(ARGS)

build:
	RUSTFLAGS="$(STATIC)" $(CARGO) build --release --locked --target $(TARGET)
	@ls -l $(BIN)

# The tests use real tools: promtool and prometheus (Debian package
# prometheus), docker-compose (to validate docker-compose.yml offline),
# unshare and chroot (util-linux, coreutils) for the scratch-image test.
TOOLS    := promtool:prometheus prometheus:prometheus docker-compose:docker-compose unshare:util-linux file:file
deps:
	@missing=""; for t in $(TOOLS); do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing tools; run: sudo apt-get install$$missing (or make test as root)" >&2; exit 1; \
	  fi; \
	fi

# cargo-fuzz needs the nightly toolchain. `make test` runs each target for
# FUZZ_SMOKE seconds, `make fuzz` for FUZZ_LONG.
FUZZ_TARGETS := encode_roundtrip route_and_query
FUZZ_SMOKE   ?= 20
FUZZ_LONG    ?= 300

fuzz-deps:
	@rustup toolchain list 2>/dev/null | grep -q '^nightly' || { echo "cargo fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz

fuzz-smoke: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$t for $(FUZZ_SMOKE) s"; \
	  if $(CARGO) +nightly fuzz run --fuzz-dir fuzz $$t -- -max_total_time=$(FUZZ_SMOKE) -max_len=4096 >fuzz/$$t.log 2>&1; \
	  then grep -E '^Done|^#[0-9]+ *DONE' fuzz/$$t.log | tail -n 1; \
	  else tail -n 60 fuzz/$$t.log; exit 1; fi; \
	done

fuzz: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
	  $(CARGO) +nightly fuzz run --fuzz-dir fuzz $$t -- -max_total_time=$(FUZZ_LONG) -max_len=4096 || exit 1; \
	done

# Slow and root-only tests (a real Prometheus, the scratch-image run) are
# #[ignore]d for plain `cargo test`; here they run too.
test: deps build
	$(CARGO) fmt --all -- --check
	TINYMON_STATIC_BIN=$(CURDIR)/$(BIN) $(CARGO) test --locked --all-targets -- --include-ignored
	$(CARGO) test --locked --doc
	$(MAKE) fuzz-smoke

image:
	docker build -t tinymon:local .

up:
	docker compose up -d --build

down:
	docker compose down

logs:
	docker compose logs -f --tail=100

bench:
	$(CARGO) bench --locked --bench encode --bench observe

# Needs wrk (Debian package wrk) and two CPUs.
bench-http: build
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk: apt-get install wrk" >&2; exit 1; }
	$(CARGO) bench --locked --bench http

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
