SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_TEST := node --test --test-concurrency=1 --test-timeout=900000

.PHONY: help deps build lint format test test-unit test-integration bench bench-operator fuzz clean

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install system packages and npm modules (idempotent)
	@hack/deps.sh

build: deps ## compile TypeScript into dist/
	@rm -rf dist && npx tsc -p tsconfig.json

lint: build ## type check, eslint, prettier
	npx eslint .
	npx prettier --check .

test: lint ## the full test suite: lint, unit, integration, e2e
	hack/guest/build.sh >/dev/null
	$(NODE_TEST) $$(find dist/test -name '*.test.js' -not -path 'dist/test/interop/*' | sort)

test-unit: build ## unit tests only
	$(NODE_TEST) $$(find dist/test/unit -name '*.test.js' | sort)

test-integration: build ## integration tests with real iSCSI clients
	$(NODE_TEST) $$(find dist/test/integration -name '*.test.js' | sort)

bench: build ## benchmarks against tgt, printed as a table with ratios
	node dist/test/bench/main.js
	node dist/test/bench/operator-bench.js

bench-operator: build ## the operator with 500 HASanTargets on the local cluster: time, memory, steady-state writes
	node dist/test/bench/operator-scale.js

clean: ## remove build output
	rm -rf dist

# Each area keeps its own targets in mk/*.mk.
include $(wildcard mk/*.mk)
