# terrafuse: `make serve` runs the example UDFs, `make test` runs every test.
PYTHON ?= python3
BUILD_DIR := $(shell $(PYTHON) -c "import sysconfig; print('build/cp' + sysconfig.get_config_var('py_version_nodot') + '-cp' + sysconfig.get_config_var('py_version_nodot') + '-' + sysconfig.get_platform().replace('-', '_').replace('.', '_'))" 2>/dev/null)

.PHONY: setup serve examples test test-cpp test-web test-py bench gen check-gen

setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

# The main job: the server on 127.0.0.1:8000 with the example UDFs published as UDF_<Name>.
serve: setup
	$(PYTHON) -m fused.cli serve --examples examples/udfs

examples:
	$(PYTHON) -m fused.cli examples --dir examples/udfs

test: setup check-gen test-cpp test-web test-py

test-cpp:
	TERRAFUSE_PYTHON=$(PYTHON) ctest --test-dir $(BUILD_DIR) --output-on-failure

# Unit tests of the workbench (vitest); its browser test runs under pytest (tests/workbench).
test-web:
	cd web && npx vitest run

test-py:
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) bench/run_all.py $(BENCH_ARGS)

# Generated artefacts are committed; CI fails when they are stale (STYLE.md §17).
gen:
	$(PYTHON) -m nanobind.stubgen -q -m fused._core -o python/fused/_core.pyi

check-gen:
	@$(PYTHON) -m nanobind.stubgen -q -m fused._core -o build/_core.pyi.check
	@diff -u python/fused/_core.pyi build/_core.pyi.check || { echo "python/fused/_core.pyi is stale: run make gen" >&2; exit 1; }
