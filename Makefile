# tinymon — see README.md.
#   make run    build and start the service on :8080 (no Docker needed)
#   make test   every test; as root it installs the Debian packages the tests
#               use and starts dockerd
#   make build  static, stripped release binary
#   make image  tinymon:local, FROM scratch with that binary
#   make up     the compose stack (SCALE=3 for three replicas); make down, make logs
#   make slo-rules  slo-rules.yml from the objectives in slo.yml
#   make bench  criterion benches of the encoder and observe path
#   make bench-requests  instructions per request (callgrind)
#   make bench-instructions  instructions per observe/inc/encode vs rivals (callgrind)
#   make loom   model-check the exemplar lock, slot claims and block publishing

CARGO  ?= cargo
# The image's architecture: the host's unless ARCH=amd64 or ARCH=arm64 is
# given (`uname -m` says x86_64 on Intel, aarch64 on Linux arm64, arm64 on
# Apple Silicon).
HOST_ARCH := $(shell uname -m | sed -e 's/^x86_64$$/amd64/' -e 's/^aarch64$$/arm64/')
ARCH   ?= $(HOST_ARCH)
# Static musl on both, linked by the rust-lld that ships with rustc, so any
# host with rustup cross-builds either one, a Mac included, with no C
# toolchain (README "Which libc"). musl's Rust targets are static by default.
TARGET_amd64 := x86_64-unknown-linux-musl
TARGET_arm64 := aarch64-unknown-linux-musl
TARGET := $(TARGET_$(ARCH))
ifeq ($(TARGET),)
$(error ARCH=$(ARCH) is not one of amd64, arm64)
endif
# --icf=all merges functions with the same machine code (~10 KB); -O2 also
# merges string constants that end another one; relative relocations are
# packed as DT_RELR (musl >= 1.2.4 applies them), which saves ~55 KB on the
# position-independent amd64 binary.
STATIC := -C linker=rust-lld -C link-arg=--icf=all -C link-arg=-O2 -C link-arg=--build-id=none \
          -C link-arg=-z -C link-arg=pack-relative-relocs
BIN    := target/$(TARGET)/release/tinymon
# What the Dockerfile copies, by the platform it builds for.
IMAGE_BIN := target/image/linux/$(ARCH)/tinymon
ARGS   ?=
# Without a local Rust toolchain, `make build` runs cargo in this image.
RUST_IMAGE ?= rust:1-bookworm
# Compose v2. COMPOSE_FILE and COMPOSE_PROJECT_NAME in the environment
# work as compose documents them (the tests swap in local images that way).
COMPOSE ?= docker compose
SCALE  ?= 1

.PHONY: run build cross-check grafana-schema slo-rules test pyenv deps docker-engine miri loom browser-test fuzz fuzz-deps fuzz-smoke bench bench-http bench-requests bench-instructions image env-file compose-v2 up up-longterm down logs fmt clippy clean

run:
	$(CARGO) run --release -- $(ARGS)

build:
	@if command -v $(CARGO) >/dev/null 2>&1; then \
	  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx $(TARGET); then \
	    echo "rustup target add $(TARGET)"; rustup target add $(TARGET); \
	  fi; \
	  echo "RUSTFLAGS=\"$(STATIC)\" $(CARGO) build --release --locked --target $(TARGET)"; \
	  RUSTFLAGS="$(STATIC)" $(CARGO) build --release --locked --target $(TARGET); \
	else \
	  echo "no $(CARGO) here: building in $(RUST_IMAGE)"; \
	  docker run --rm -v "$(CURDIR)":/src -w /src -e CARGO_HOME=/src/target/cargo-home \
	    -e OWNER="$$(id -u):$$(id -g)" $(RUST_IMAGE) \
	    sh -c 'rustup target add $(TARGET) && RUSTFLAGS="$(STATIC)" cargo build --release --locked --target $(TARGET); \
	           rc=$$?; chown -R "$$OWNER" target; exit $$rc'; \
	fi
	@mkdir -p $(dir $(IMAGE_BIN)) && cp $(BIN) $(IMAGE_BIN)
	@ls -l $(BIN)
# The tests use real tools. From Debian's newer suites, unpacked into
# target/debian/ by tests/stack/newer-debian.sh (no system package
# changes): Prometheus and promtool 3.5.3, Alertmanager and amtool 0.28.1
# (and 0.33.1), VictoriaMetrics 1.145.0, Docker Engine 28.5.2 with compose
# v2.40.3 and buildx 0.29.1. From bookworm: runc and iptables for that
# engine, busybox-static for the wget in the locally built Prometheus and
# Alertmanager images, qemu-user-static and binfmt-support to run the arm64
# build, and protoc (protobuf-compiler), which prometheus-client's
# protobuf encoder, a bench rival, needs to build.
TOOLS    := file:file protoc:protobuf-compiler qemu-aarch64-static:qemu-user-static \
            update-binfmts:binfmt-support runc:runc iptables:iptables
NEWER    := $(CURDIR)/target/debian/bin
# The cross checks: the library on macOS and Windows, the binary on macOS.
CROSS_LIB  := aarch64-apple-darwin x86_64-pc-windows-msvc
CROSS_BINS := aarch64-apple-darwin
# The official Python client (from PyPI) in a venv: its OpenMetrics parser
# reads tinymon's OpenMetrics scrapes in the tests.
PYENV := target/pyenv
PY_CLIENT := prometheus-client==0.21.1
pyenv: $(PYENV)/.installed
$(PYENV)/.installed:
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "the OpenMetrics tests need python3-venv: sudo apt-get install python3-venv" >&2; exit 1; fi; }
	python3 -m venv $(PYENV)
	$(PYENV)/bin/pip install --quiet --disable-pip-version-check $(PY_CLIENT)
	@touch $@

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
	@if ! busybox 2>/dev/null | head -n 1 | grep -q BusyBox || ldd "$$(command -v busybox)" >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null; \
	  else echo "the local test images need a static busybox: sudo apt-get install busybox-static" >&2; exit 1; fi; \
	fi
	@tests/stack/newer-debian.sh
	@# arm64 images run through the kernel's binfmt_misc (qemu's entry has
	@# the F flag, so it works inside containers too).
	@if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && [ "$$(id -u)" = 0 ]; then \
	  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	  update-binfmts --enable qemu-aarch64; \
	fi
	@for t in $(CROSS_LIB) aarch64-unknown-linux-musl; do \
	  rustup target list --installed | grep -qx $$t || rustup target add $$t; \
	done

# Writes slo-rules.yml from slo.yml with the project's generator
# (test-support/src/slo.rs); `make test` fails while the two disagree.
slo-rules: export PATH := $(NEWER):$(PATH)
slo-rules:
	TINYMON_WRITE_SLO_RULES=1 $(CARGO) test --locked --test slo_rules

# Type-checks the library for other systems (clippy runs `cargo check`
# and its lints): macOS and Windows, and the binary for macOS.
cross-check:
	@for t in $(CROSS_LIB); do \
	  echo "clippy --lib --target $$t"; $(CARGO) clippy --locked --lib --target $$t -- -D warnings || exit 1; \
	done
	@for t in $(CROSS_BINS); do \
	  echo "clippy --bins --target $$t"; $(CARGO) clippy --locked --bins --target $$t -- -D warnings || exit 1; \
	done

# A Docker engine that answers: as root, starts target/debian's dockerd.
docker-engine:
	@tests/stack/ensure-docker.sh

# cargo-fuzz needs the nightly toolchain. `make test` runs each target for
# FUZZ_SMOKE seconds, `make fuzz` for FUZZ_LONG.
FUZZ_TARGETS := encode_roundtrip route_and_query openmetrics_python accept_header protobuf_prost
FUZZ_SMOKE   ?= 20
FUZZ_LONG    ?= 300

# Miri checks the unsafe code of the metric core, the encoder and the RED
# series cache under Stacked Borrows, with the concurrency tests cut to a
# few iterations.
miri:
	@rustup toolchain list 2>/dev/null | grep -q '^nightly' || { echo "Miri needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@rustup +nightly component list --installed 2>/dev/null | grep -q '^miri' || rustup component add --toolchain nightly miri rust-src
	# Exemplars read the wall clock, which Miri isolates unless told not to.
	MIRIFLAGS="-Zmiri-disable-isolation" $(CARGO) +nightly miri test --lib -- metrics:: encode:: http::red_series::

# loom explores every interleaving of each model in src/metrics (the
# `loom_models` modules; see src/metrics/sync.rs) with at most two
# preemptions a run, which still finds each weakened ordering the models
# were checked against; about a minute after a 3-minute first build, in a
# target directory of its own so the cfg does not rebuild the others.
loom:
	LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom -D warnings" CARGO_TARGET_DIR=$(CURDIR)/target/loom \
	  $(CARGO) test --locked --lib --release loom_ -- --test-threads=1 --nocapture

fuzz-deps:
	@rustup toolchain list 2>/dev/null | grep -q '^nightly' || { echo "cargo fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install --locked cargo-fuzz

fuzz-smoke: fuzz-deps pyenv
	@for t in $(FUZZ_TARGETS); do \
	  echo "fuzzing $$t for $(FUZZ_SMOKE) s"; \
	  if $(CARGO) +nightly fuzz run --fuzz-dir fuzz $$t -- -max_total_time=$(FUZZ_SMOKE) -max_len=4096 >fuzz/$$t.log 2>&1; \
	  then grep -E '^Done|^#[0-9]+ *DONE' fuzz/$$t.log | tail -n 1; \
	  else tail -n 60 fuzz/$$t.log; exit 1; fi; \
	done

fuzz: fuzz-deps pyenv
	@for t in $(FUZZ_TARGETS); do \
	  $(CARGO) +nightly fuzz run --fuzz-dir fuzz $$t -- -max_total_time=$(FUZZ_LONG) -max_len=4096 || exit 1; \
	done

# Slow and root-only tests (a real Prometheus, the scratch-image run) are
# #[ignore]d for plain `cargo test`; here they run too.
# The tools from target/debian/ come first on PATH.
test: export PATH := $(NEWER):$(PATH)
test: deps docker-engine build pyenv
	$(MAKE) build ARCH=arm64
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(MAKE) cross-check
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps
	$(MAKE) miri
	$(MAKE) loom
	TINYMON_STATIC_BIN=$(CURDIR)/$(BIN) $(CARGO) test --locked --workspace --all-targets -- --include-ignored
	$(CARGO) test --locked --workspace --doc
	$(MAKE) browser-test
	$(MAKE) grafana-schema
	$(MAKE) fuzz-smoke

# The dashboard against Grafana's published Dashboard type (npm
# @grafana/schema at the version docker-compose.yml pins), tsc --strict.
grafana-schema:
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "the dashboard check needs Node.js and npm: sudo apt-get install nodejs npm" >&2; exit 1; fi; }
	cd tests/grafana && npm ci --no-audit --no-fund --loglevel=error
	node tests/grafana/check_dashboard.mjs

# The live page at / in Debian's chromium, driven by playwright-core (npm).
browser-test: build
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then echo "installing Debian's chromium"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs chromium: sudo apt-get install chromium" >&2; exit 1; fi; }
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "the browser test needs Node.js and npm: sudo apt-get install nodejs npm" >&2; exit 1; fi; }
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
	TINYMON_BIN=$(CURDIR)/$(BIN) node tests/browser/live_page.mjs

# The Dockerfile copies the static binary that `make build` leaves in
# target/image/linux/$(ARCH)/. The build argument is what BuildKit sets by
# itself from --platform; the legacy builder needs it given.
image: build
	docker build --platform linux/$(ARCH) --build-arg TARGETARCH=$(ARCH) -t tinymon:local .

# Grafana's admin password has no default: the first `make up` writes a
# random one to .env, which compose reads.
env-file:
	@[ -n "$${GRAFANA_ADMIN_PASSWORD:-}" ] || grep -qs '^GRAFANA_ADMIN_PASSWORD=' .env || { \
	  printf 'GRAFANA_ADMIN_PASSWORD=%s\n' "$$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')" >> .env; \
	  chmod 600 .env; \
	  echo "wrote a random Grafana admin password to .env (user admin)"; }

# Compose v2 is needed (docker-compose 1.x is not tested and not supported).
compose-v2:
	@$(COMPOSE) version >/dev/null 2>&1 || { \
	  echo "'$(COMPOSE)' does not work: make up needs Docker Compose v2 (the docker compose plugin)" >&2; exit 1; }

# A config that promtool or amtool refuses stops the stack before Prometheus
# or Alertmanager start (the *-config services of docker-compose.yml); their
# message is printed here.
COMPOSE_UP = $(COMPOSE) $(1) up -d --scale tinymon=$(SCALE) || { \
	  echo "make: the stack did not start; the config checks said:" >&2; \
	  $(COMPOSE) $(1) logs --no-log-prefix prometheus-config alertmanager-config >&2; exit 1; }

up: compose-v2 image env-file
	@$(call COMPOSE_UP,)
	@echo "Grafana http://127.0.0.1:$${GRAFANA_PORT:-3000}  Prometheus http://127.0.0.1:$${PROMETHEUS_PORT:-9090}  Alertmanager http://127.0.0.1:$${ALERTMANAGER_PORT:-9093}"

# The stack plus the long-term store (VictoriaMetrics, remote_write).
LONGTERM := -f docker-compose.yml -f docker-compose.longterm.yml
up-longterm: compose-v2 image env-file
	@$(call COMPOSE_UP,$(LONGTERM))
	@echo "VictoriaMetrics http://127.0.0.1:$${VICTORIAMETRICS_PORT:-8428}; pick it in the dashboard's Data source menu"

# With both files, so the store goes too when it ran.
down: compose-v2 env-file
	$(COMPOSE) $(LONGTERM) down

logs: compose-v2 env-file
	$(COMPOSE) logs -f --tail=100

bench:
	$(CARGO) bench --locked --bench encode --bench observe

# Needs wrk (Debian package wrk) and two CPUs.
bench-http: build
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || { echo "install wrk: apt-get install wrk" >&2; exit 1; }
	@# The Go rebuild of the original (benches/go_original) joins when Go and
	@# client_golang are here; as root they are installed, else its row is skipped.
	@command -v go >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-prometheus-client-golang-dev >/dev/null; } || true
	$(CARGO) bench --locked --bench http

# Instructions per /hello request under callgrind: bare tiny_http, the same
# with RedMetrics, and tinymon's Service. Needs valgrind (Debian package).
bench-requests:
	@command -v valgrind >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq valgrind >/dev/null; } || { echo "install valgrind: apt-get install valgrind" >&2; exit 1; }
	$(CARGO) bench --locked --bench request_cost

# Instructions per observe, inc and encode under callgrind, tinymon against
# its rivals (benches/instructions.rs). Needs valgrind.
bench-instructions:
	@command -v valgrind >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq valgrind >/dev/null; } || { echo "install valgrind: apt-get install valgrind" >&2; exit 1; }
	$(CARGO) bench --locked --bench instructions

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
