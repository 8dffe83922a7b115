# Two commands on a fresh machine:
#   make demo   -> backtest an example expert on real Binance candles, write the HTML report
#   make test   -> the whole test suite (import contracts + pytest, SQLite and PostgreSQL)
PYTHON ?= python3
SHELL  := /bin/bash
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The engine's hot modules are compiled with mypyc (metaexpert/_compiled.py lists them);
# `build` compiles them again after one of their sources changed.
COMPILED := $(VENV)/.compiled
COMPILED_SOURCES := $(shell sed -n 's/^    "\(metaexpert\.[a-z_.]*\)",$$/\1/p' metaexpert/_compiled.py | tr . / | sed 's/$$/.py/')

.PHONY: demo test lint bench install build clean

# pip -qq: errors only. With one -q, setuptools' notice about editable installs ("Please be
# careful with folders in your working directory...") fills the first screen of `make demo`.
$(STAMP): pyproject.toml setup.py
	@echo "install: creating $(VENV) and installing the package with its tools (a few minutes, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	METAEXPERT_COMPILE=0 $(BIN)/pip install -qq -e '.[pipelines,research,dev,dask,ray]'
	touch $(STAMP)

# The editable install above is pure Python; this compiles the hot modules in place, and
# again whenever one of their sources changed. mypyc is silent for minutes, so the recipe
# prints each step with the time elapsed (and a line every 20 s), then the real duration;
# the compiler's own output goes to build/mypyc.log (shown when the build fails).
$(COMPILED): $(STAMP) $(COMPILED_SOURCES) metaexpert/_compiled.py setup.py
	@echo "build: compiling the engine's $(words $(COMPILED_SOURCES)) hot modules with mypyc (once; 3 to 5 minutes on 2 cores)"
	@mkdir -p build; start=$$SECONDS; \
	elapsed() { printf '  [%d:%02d] ' $$(( (SECONDS - start) / 60 )) $$(( (SECONDS - start) % 60 )); }; \
	( while sleep 20; do elapsed; echo "still compiling (build/mypyc.log)"; done ) & ticker=$$!; \
	trap 'kill $$ticker 2>/dev/null' EXIT; \
	elapsed; echo "type-checking the modules and translating them to C"; \
	set -o pipefail; \
	$(BIN)/python -u setup.py build_ext --inplace 2>&1 | tee build/mypyc.log | while IFS= read -r line; do \
	  case "$$line" in "building '"*) elapsed; echo "C compiler: $${line#building }";; esac; \
	done; status=$$?; kill $$ticker 2>/dev/null; \
	if [ $$status -ne 0 ]; then tail -40 build/mypyc.log; echo "build failed (full log: build/mypyc.log)"; exit $$status; fi; \
	elapsed; echo "compiled in $$(( (SECONDS - start) / 60 )) min $$(( (SECONDS - start) % 60 )) s"
	@touch $(COMPILED)

install: $(STAMP)

build: $(COMPILED)

demo: $(COMPILED)
	$(BIN)/metaexpert demo

# One style: ruff's lint rules and its formatter (pyproject.toml [tool.ruff]), plus the layer contracts.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# METAEXPERT_REQUIRE_COMPILED: the tests that compare the compiled and the pure build fail
# (instead of skipping) when the package under test is not the compiled one.
# TEST_WORKERS: pytest-xdist processes, one test module each at a time (--dist loadfile keeps
# a module's servers and fixtures in one process). The suite mostly waits on servers and
# subprocesses: on 2 idle cores it used 7 CPU-minutes in 6 minutes of wall time with 4
# workers, against 22 minutes with none; hence twice as many workers as cores.
TEST_WORKERS ?= 4
test: $(COMPILED) lint
	METAEXPERT_REQUIRE_COMPILED=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(COMPILED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) output .pytest_cache build
	find metaexpert -name '*.so' -delete
	rm -f *__mypyc*.so
