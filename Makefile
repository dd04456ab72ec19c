# Two commands do all the set-up: `make demo` and `make test` (each bootstraps .venv when missing).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bootstrapped
NEWEST_VENV ?= .venv-newest
NEWEST_STAMP := $(NEWEST_VENV)/.bootstrapped
PYTEST_ARGS ?=

.PHONY: demo quickstart test test-fast test-newest bench lock clean-venv

$(STAMP): pyproject.toml requirements/lock.txt requirements/lock-tfx121.txt tools/bootstrap.sh tools/find_python.sh \
	tools/data_packages.sh tools/venv_install.sh
	bash tools/bootstrap.sh
	touch $(STAMP)

# The main job: TFX pipeline on IMDB with pretrained MiniLM (blessed, pushed), then served over gRPC
# (tfx_pipeline/demo.py; DEMO_ARGS passes flags, e.g. DEMO_ARGS="--train-steps 20"). TASK=token_classification,
# span_qa or translate runs that task's demo (WNUT-16, SQuAD v1.1, English-Spanish Bible verses) instead.
DEMO_ARGS ?=
TASK ?=
demo: $(STAMP)
	$(PY) -m tfx_pipeline.demo $(if $(TASK),--task $(TASK)) $(DEMO_ARGS)

# Fine-tune MiniLM on IMDB with plain Keras (no TFX), as in the README's quickstart.
quickstart: $(STAMP)
	$(PY) -m tfmodels.examples.quickstart

# Everything, the slow end-to-end tests included (CI runs this), on two pytest-xdist workers: the end-to-end
# tests wait on subprocesses, JVMs, servers and notebook kernels as much as they compute. XDIST= runs one process.
# Two sessions in .venv, e2e first, so that workers start fresh halfway (tools/run_tests.sh says why); then the
# newest end (.venv-newest) on NEWEST_CI_TESTS, the fast tests plus one export -> serve round trip. The last lines
# give each session's environment and pass count. With PYTEST_ARGS (a selection) only .venv runs.
# The two bootstraps run side by side (-j2; pip is mostly one core), each one's output kept together (-O).
XDIST ?= -n 2 --dist loadgroup
test:
	@$(MAKE) --no-print-directory -j2 -O $(STAMP) $(if $(PYTEST_ARGS),,$(NEWEST_STAMP))
	$(if $(PYTEST_ARGS),,NEWEST_PYTHON=$(NEWEST_VENV)/bin/python NEWEST_ARGS="$(NEWEST_XDIST) $(NEWEST_CI_TESTS)") \
	bash tools/run_tests.sh $(PY) $(XDIST) $(PYTEST_ARGS)

# Day-to-day: skip the end-to-end tests.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

# The newest end of the supported range: Python 3.12, TensorFlow 2.21, Keras 3.15, no TFX (.venv-newest from
# requirements/lock-newest.txt by tools/bootstrap_newest.sh, quick when it exists). The fast tfmodels and serving
# tests, one export -> serve round trip, the multi-worker probes and the wheel installed in a fresh venv.
NEWEST_TESTS ?= tests/checkpoints tests/distribute/test_keras_fixes.py tests/export tests/layers tests/models \
	tests/ops tests/serving tests/text tests/test_imports.py tests/test_packaging.py
NEWEST_XDIST ?= -n 2
# Its part of `make test` (CI time): imports and packaging, layers, ops, tokenizers, the GGUF reader, the Keras
# fixes, gRPC and REST serving, and the classifier export served (float32 and int8).
NEWEST_CI_TESTS ?= tests/test_imports.py tests/test_packaging.py tests/distribute/test_keras_fixes.py tests/layers \
	tests/ops tests/checkpoints/test_gguf.py tests/serving/test_serving_grpc.py tests/serving/test_serving_rest.py \
	tests/text/test_tokenizer.py tests/text/test_byte_pair.py \
	tests/export/test_export_classifier.py::test_model_server_answers_predict_and_classify_on_raw_text \
	--deselect tests/test_packaging.py::test_the_wheel_installs_in_a_fresh_python_312_venv
$(NEWEST_STAMP): pyproject.toml requirements/lock-newest.txt tools/bootstrap_newest.sh tools/find_python.sh \
	tools/data_packages.sh tools/venv_install.sh
	VENV_NEWEST=$(NEWEST_VENV) bash tools/bootstrap_newest.sh

# The wheelhouse too: tests/test_packaging.py installs the built wheel from it into a fresh venv.
test-newest: $(NEWEST_STAMP)
	@VENV_NEWEST=$(NEWEST_VENV) bash tools/bootstrap_newest.sh --wheelhouse
	$(NEWEST_VENV)/bin/python -m pytest -m "not e2e" $(NEWEST_XDIST) $(NEWEST_TESTS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/bert_train.py

# Refresh the lock file from the current environment.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements/lock.txt

clean-venv:
	rm -rf $(VENV)
