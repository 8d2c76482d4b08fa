VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install nightly test test-slow benchmark serve-benchmark forest-sizing wheel clean

# The project virtualenv, created and filled on first use (and again when setup.py changes):
# the package, Spark (the `local` extra) and the test tools.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[local,test]"
	touch $(STAMP)

install: $(STAMP)

# The nightly job on the bundled data, into ./lakehouse.
nightly: install
	./spark-submit.sh nightly

# The test suite, each file whole on one of two workers (slow scale tests excluded; `make
# test-slow` runs them).
test: install
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test-slow: install
	$(PY) -m pytest -n 2 --dist loadfile -m slow

# The scale benchmark: N generated customers through features -> train -> score, with figures.
ROWS ?= 1000000
benchmark: install
	$(PY) -m benchmarks.nightly --rows $(ROWS) $(ARGS)

# One customer at a time through `mlflow models serve` of the champion: p50 and p99 latency.
serve-benchmark: install
	$(PY) -m benchmarks.serving $(ARGS)

# What the forest's size buys, on the bundled data.
forest-sizing: install
	$(PY) -m benchmarks.forest_sizing $(ARGS)

wheel: install
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf build dist lakehouse spark-warehouse *.egg-info
