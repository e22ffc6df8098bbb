PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-quick bench-anchors clean

# (Re)create the virtual environment whenever pyproject.toml or the constraints change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/imgexplain demo --out imgexplain-out

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

# Each benchmark rewrites only its own section of BENCHMARKS.md; one alone: $(BIN)/python -m bench.NAME (bench/README.md).
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

bench-anchors: $(STAMP)
	$(BIN)/python -m bench.anchors

clean:
	rm -rf $(VENV) imgexplain-out
