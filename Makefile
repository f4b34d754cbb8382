# Gongzhi — the two commands are `make run` and `make test`; everything else is detail.
#
# One cargo profile (release) serves run, test, clippy and benchmarks, so RocksDB's C++ is
# compiled once. Set CARGO_TARGET_DIR to keep build output outside the clone (CI does).

SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?= --release --locked
VALIDATORS ?= 4
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.DEFAULT_GOAL := help
.PHONY: help run build test deps negative-controls soak bench

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

run: build ## Build, then start a 4-validator devnet with the demo district (Ctrl-C stops it)
	$(TARGET_DIR)/release/gongzhi devnet up --validators $(VALIDATORS) --dir .devnet --fresh

# Every build selects the whole workspace with all targets: a narrower selection resolves some
# dependencies with other features, which would recompile RocksDB's C++ a second time.
build: deps ## Build everything (the one release profile)
	$(CARGO) build $(CARGO_FLAGS) --workspace --all-targets

test: build ## Formatting, clippy -D warnings, every test, and the negative controls
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	$(CARGO) test $(CARGO_FLAGS) --workspace --all-targets
	$(MAKE) --no-print-directory negative-controls

negative-controls: ## Prove the simulator's checkers catch a consensus core without the lock rule
	$(CARGO) test $(CARGO_FLAGS) -p gongzhi-tests --features mutation-no-lock-rule --test negative_lock_rule

soak: ## Long consensus simulation soak (1000 seeds per configuration)
	$(CARGO) run $(CARGO_FLAGS) -p gongzhi-tests --bin sim -- --seeds 1000

bench: deps ## Criterion benchmarks (figures go to docs/BENCHMARKS.md)
	$(CARGO) bench --profile release --locked --workspace --bench ledger --bench contracts

# RocksDB's bindgen needs libclang; a fresh machine lacks it. We are root on the dev and CI
# machines, so install it, and say so. Only libclang itself counts: libclang-cpp (which other
# packages pull in) is a different library that bindgen cannot load.
LIBCLANG_GLOBS := /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
	/usr/lib/*/libclang.so* /usr/lib/*/libclang-[0-9]*.so*
deps:
	@if ! for g in $(LIBCLANG_GLOBS); do compgen -G "$$g"; done | grep -q .; then \
	  echo ">>> libclang is missing (RocksDB's bindgen needs it): installing libclang-dev with apt-get"; \
	  if [ "$$(id -u)" != 0 ]; then echo ">>> not root: run 'sudo apt-get install libclang-dev' and retry"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev >/dev/null && \
	  echo ">>> installed libclang-dev"; \
	fi
	@command -v g++ >/dev/null || { echo ">>> g++ is missing (RocksDB is C++): installing it"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }
	@command -v chromium >/dev/null || { echo ">>> chromium is missing (the audit report test renders HTML): installing it"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@python3 -c 'import grpc, grpc_tools, cryptography' 2>/dev/null || { echo ">>> Python gRPC packages are missing (the Python client test needs them): installing examples/python/requirements.txt with pip"; \
	  python3 -m pip install -q -r examples/python/requirements.txt; }
