# One command to run the assistant, one to test it. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp built natively crashes on these CPUs in the AMX path; build a portable AVX2 binary.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install run test test-fast migrate bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m assistant.launcher

migrate: $(STAMP)
	$(BIN)/python manage.py migrate

# Tests use the machine's PostgreSQL (pgvector) and Redis (a Redis database of their own); where
# nothing answers at those URLs, the embedded ones of `make run` (assistant/launcher/for_tests.py).
TEST_ENV := SECRET_KEY=test-only-secret DEBUG=false SECURE_COOKIES=false REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/14} CELERY_BROKER_URL=

test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m assistant.launcher.for_tests $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m assistant.launcher.for_tests -m "not e2e" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
