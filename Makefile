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

.PHONY: run build test unit-tests deps bench bench-http image up down logs fmt clippy clean

run:
	$(CARGO) run --release -- $(ARGS)

build:
	RUSTFLAGS="$(STATIC)" $(CARGO) build --release --locked --target $(TARGET)
	@ls -l $(BIN)

# promtool (Debian package prometheus) checks every scrape in the tests.
deps:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's prometheus package for promtool"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; \
	  else \
	    echo "promtool is missing: run 'sudo apt-get install prometheus' (or make test as root)" >&2; exit 1; \
	  fi; \
	fi

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

bench:
	$(CARGO) bench --locked --bench encode --bench observe

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
