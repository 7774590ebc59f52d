# Gatehouse: every task is a target here. README's two commands are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
CONF ?= conf/gatehouse.yaml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := cmake perl make

.PHONY: deps build run test lint fmt check-config bench bench-load waf-eval

## Install the system packages the build needs: cmake (Pingora's zlib-ng), perl and make (its vendored OpenSSL).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(CARGO) build --release --bin gatehouse

## Run Gatehouse on $(CONF) in front of the demo origin (127.0.0.1:9001 and :9002).
run: deps
	$(CARGO) build --release --bin gatehouse --example demo_origin
	@./target/release/examples/demo_origin 127.0.0.1:9001 127.0.0.1:9002 & origin=$$!; \
	trap 'kill $$origin 2>/dev/null' EXIT INT TERM; \
	echo "try: curl -i http://127.0.0.1:8080/"; \
	./target/release/gatehouse -c $(CONF)

## Every test: format, lints, unit and end-to-end tests.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

lint: deps
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Check every config file in conf/.
check-config: deps
	$(CARGO) build --bin gatehouse
	@for f in conf/*.yaml conf/examples/*.yaml; do ./target/debug/gatehouse -t -c $$f || exit 1; done

## Criterion benches of the hot paths (route lookup, headers, selection).
bench: deps
	$(CARGO) bench --bench hot_paths
	$(CARGO) bench --bench waf_engine

## Side by side under load: Gatehouse vs bare Pingora vs nginx (installs nginx and wrk).
bench-load: deps
	@missing=""; for p in nginx wrk util-linux libnginx-mod-http-modsecurity; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	$(CARGO) build --release --bin gatehouse --example bare_pingora
	benches/load.sh $(SCENARIOS)

## The WAF against the Core Rule Set's own regression tests, judged by rule id
## (CRS_DIR defaults to ../shared/corpora/crs; PARANOIA to 4).
CRS_DIR ?= ../shared/corpora/crs
PARANOIA ?= 4
waf-eval: deps
	$(CARGO) run --release --example waf_eval -- $(CRS_DIR) $(PARANOIA)
