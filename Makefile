# reidnb: `make report` runs the whole workbook, `make test` runs the test suite.
# Both create .venv (Python 3.11) and install the project into it when missing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= quick
OUT    ?= outputs
ARGS   ?=

.PHONY: setup test lint report lab bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

lint: setup
	$(PY) -m ruff check reidnb tests benchmarks notebooks

test: setup lint
	$(PY) -m pytest -q

report: setup
	$(PY) -m reidnb report --profile $(PROFILE) --output-dir $(OUT) $(ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(OUT) .pytest_cache
