# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv with the
# pinned dependency set when it is missing (a stamp file makes a second call a no-op).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Offline machines cannot download ImageNet weights: the demo then uses random weights.
DEMO_WEIGHTS ?= null

.PHONY: venv test demo bench cluster-test mlflow-ui clean

$(STAMP): pyproject.toml requirements.lock
	@command -v java >/dev/null || { echo "java not found: install OpenJDK 17 (apt-get install openjdk-17-jre-headless) and retry"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The whole chain for MobileNet and ResNet50 on the generated sample, then the comparison.
demo: $(STAMP)
	$(PY) -m bigcat_ml.main -m model=mobilenet,resnet50 model.weights=$(DEMO_WEIGHTS)
	$(PY) -m bigcat_ml.compare

bench: $(STAMP)
	$(PY) -m benchmarks.run

cluster-test: $(STAMP)
	$(PY) -m pytest -m cluster -p no:cacheprovider

mlflow-ui: $(STAMP)
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --backend-store-uri sqlite:///$(CURDIR)/outputs/mlflow/mlflow.db

clean:
	rm -rf outputs
