"""The served MLflow model: loading and predicting with it runs the classifier alone, not the Spark path."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
from PIL import Image
from helpers.models import TINY

from bigcat_ml.config.schema import ModelConfig, Precision
from bigcat_ml.scoring.fine_tuned import PYFUNC_ARTIFACT, save_classifier
from bigcat_ml.training.pyfunc import ChipClassifierModel

CLASSES = ["Jaguar", "Tiger"]

# Loads the model, predicts one chip and reports the labels and which Spark-path modules
# the process imported. ``import mlflow`` already imports ``pyspark`` itself when it is
# installed (``mlflow.types.schema``), so the check is on what the Spark path would add:
# Spark ML (``predict_batch_udf``) and bigcat_ml's Spark inference module.
SERVE = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
with open(sys.argv[2], "rb") as chip:
    out = model.predict(pd.DataFrame({"chip": [chip.read()]}))
spark_path = ("pyspark.ml", "bigcat_ml.scoring.inference.spark")
print(json.dumps({"labels": list(out["label"]), "loaded": sorted(m for m in sys.modules if m.startswith(spark_path))}))
"""


def tiny_classifier(path: Path) -> Path:
    """A two-class classifier file as train saves it, built in a second (no backbone)."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input((TINY, TINY, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(len(CLASSES), activation="softmax")]
    )
    backbone = ModelConfig(name="tiny", keras_module="mobilenet", keras_class="MobileNet", input_size=TINY,
                           weights=None, precision=Precision.float32, source=None)
    return save_classifier(model, path, CLASSES, backbone)


def test_the_served_model_predicts_without_importing_the_spark_inference_path(tmp_path):
    classifier = tiny_classifier(tmp_path / "classifier.keras")
    model_dir = tmp_path / "model"
    mlflow.pyfunc.save_model(str(model_dir), python_model=ChipClassifierModel(), artifacts={PYFUNC_ARTIFACT: str(classifier)})
    chip = tmp_path / "chip.jpg"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(buffer, "JPEG")
    chip.write_bytes(buffer.getvalue())
    done = subprocess.run([sys.executable, "-c", SERVE, str(model_dir), str(chip)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["loaded"] == []
    assert len(served["labels"]) == 1 and served["labels"][0] in CLASSES
