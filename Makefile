# ubatch — the two commands a new user needs:
#   make demo   set up everything, start the embedded stack, run the demo jobs
#   make test   set up everything, run the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_STAMP := node_modules/.package-lock.json
REF_PKGS := python3-astropy python3-healpy python3-sep python3-photutils python3-pandas
# the command sandbox (bubblewrap: read-only inputs, private mounts) and TLS certificates (openssl)
SYS_PKGS := bubblewrap openssl

.PHONY: help setup nats sys refs deps build schemas test test-unit test-integration demo bench clean

help:
	@echo "make demo   - install what is missing, build, run the demo on the embedded local stack"
	@echo "make test   - install what is missing, build, run the test suite"
	@echo "make bench  - run the benchmarks (results go to bench/RESULTS.md by hand)"

# nats-server from Debian's packages when it is missing
nats:
	@if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing nats-server from Debian's packages"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server; \
	else \
	  echo "nats-server is missing: install it with 'sudo apt-get install nats-server' (Debian/Ubuntu)"; \
	  echo "or put a nats-server binary on PATH / in UBATCH_NATS_SERVER"; exit 1; \
	fi

# trusted reference implementations the tests compare against (skipped with a message when absent)
refs:
	@missing=""; for p in $(REF_PKGS) $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing reference packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "note: reference packages missing ($$missing); tests that compare against them will be skipped"; fi

# what the sandbox and TLS need at run time (bubblewrap, openssl); the daemons say so when absent
sys:
	@missing=""; for p in $(SYS_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "note: packages missing ($$missing): commands run without bubblewrap's read-only mounts, TLS set-up needs openssl"; fi

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

deps: $(NODE_STAMP)

build: deps
	npx tsc -p tsconfig.json

schemas: build
	node dist/protocol/export-schemas.js

setup: nats deps build

test: nats refs build
	npx vitest run

demo: nats sys build
	node dist/ops/cli.js demo

bench: nats build
	node dist/bench/dispatch.js
	node dist/bench/catalog-sql.js

clean:
	rm -rf dist .ubatch
