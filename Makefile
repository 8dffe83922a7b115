# Two commands on a fresh machine:
#   make demo   -> backtest an example expert on real Binance candles, write the HTML report
#   make test   -> the whole test suite (import contracts + pytest, SQLite and PostgreSQL)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The engine's hot modules are compiled with mypyc (metaexpert/_compiled.py lists them);
# `build` compiles them again after one of their sources changed.
COMPILED := $(VENV)/.compiled
COMPILED_SOURCES := $(shell sed -n 's/^    "\(metaexpert\.[a-z_.]*\)",$$/\1/p' metaexpert/_compiled.py | tr . / | sed 's/$$/.py/')

.PHONY: demo test lint bench install build clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	METAEXPERT_COMPILE=0 $(BIN)/pip install --quiet -e '.[pipelines,research,dev]'
	touch $(STAMP)

# The editable install above is pure Python; this compiles the hot modules in place
# (about 2 minutes) and again whenever one of their sources changed.
$(COMPILED): $(STAMP) $(COMPILED_SOURCES) metaexpert/_compiled.py setup.py
	$(BIN)/python setup.py --quiet build_ext --inplace
	touch $(COMPILED)

install: $(STAMP)

build: $(COMPILED)

demo: $(COMPILED)
	$(BIN)/metaexpert demo

lint: $(STAMP)
	$(BIN)/lint-imports

# METAEXPERT_REQUIRE_COMPILED: the tests that compare the compiled and the pure build fail
# (instead of skipping) when the package under test is not the compiled one.
test: $(COMPILED)
	$(BIN)/lint-imports
	METAEXPERT_REQUIRE_COMPILED=1 $(BIN)/python -m pytest -q

bench: $(COMPILED)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) output .pytest_cache build
	find metaexpert -name '*.so' -delete
	rm -f *__mypyc*.so
