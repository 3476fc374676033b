# terrafuse: `make serve` runs the example UDFs, `make test` runs every test.
PYTHON ?= python3
BUILD_DIR := $(shell $(PYTHON) -c "import sysconfig; print('build/cp' + sysconfig.get_config_var('py_version_nodot') + '-cp' + sysconfig.get_config_var('py_version_nodot') + '-' + sysconfig.get_platform().replace('-', '_').replace('.', '_'))" 2>/dev/null)

.PHONY: setup serve examples test test-cpp test-py bench

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

# Until the HTTP server exists, the main job runs the example UDFs and prints their results.
serve: setup examples

examples:
	$(PYTHON) -m fused.cli examples --dir examples/udfs

test: setup test-cpp test-py

test-cpp:
	ctest --test-dir $(BUILD_DIR) --output-on-failure

test-py:
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) bench/run_all.py $(BENCH_ARGS)
