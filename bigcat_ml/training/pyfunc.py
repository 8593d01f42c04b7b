"""The trained classifier as an MLflow pyfunc model: JPEG chip bytes in, classes out.

A ``mlflow.pyfunc.PythonModel`` around the classifier file
(:mod:`bigcat_ml.scoring.fine_tuned`) and the inference code ``evaluate`` uses
(:class:`bigcat_ml.scoring.inference.classifier.ChipClassifier`), so ``mlflow.pyfunc.load_model(uri)
.predict(pd.DataFrame({"chip": [jpeg, ...]}))`` decodes, resizes and preprocesses as the
project does. Loading it needs the ``bigcat_ml`` package installed.

The Keras model travels as the ``.keras`` artifact only, loaded in ``load_context`` with
Keras' safe mode; ``python_model.pkl`` holds the class alone (a pickled Keras model is
13 MB and unpickles with ``safe_mode=False``, running any code stored in it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from bigcat_ml.scoring.fine_tuned import PYFUNC_ARTIFACT, classifier_given_to_load_context

INPUT_COLUMN = "chip"
# Output columns: top-1 class and probability, every class's probability (class order in the
# model's metadata), and why a chip was not scored (null when it was).
LABEL, PROBABILITY, PROBABILITIES, REASON = "label", "probability", "probabilities", "reason"


class ChipClassifierModel(mlflow.pyfunc.PythonModel):
    """Predicts the selected classes for a DataFrame with a ``chip`` column of JPEG bytes."""

    @classmethod
    def of_file(cls, classifier_file: Path) -> "ChipClassifierModel":
        """A model scoring with ``classifier_file`` before it is logged (as ``load_context`` does after)."""
        from bigcat_ml.scoring.inference.classifier import fine_tuned_classifier

        model = cls()
        model._classifier = fine_tuned_classifier(classifier_file)
        return model

    def load_context(self, context: Any) -> None:
        from bigcat_ml.scoring.inference.classifier import fine_tuned_classifier

        self._classifier = fine_tuned_classifier(classifier_given_to_load_context(context.artifacts[PYFUNC_ARTIFACT]))

    def __getstate__(self) -> Dict[str, Any]:
        """What MLflow pickles: nothing of a loaded classifier (it is the ``.keras`` artifact)."""
        return {}

    def predict(self, context: Any, model_input: pd.DataFrame, params: Optional[Dict[str, Any]] = None) -> pd.DataFrame:
        if INPUT_COLUMN not in model_input:
            raise ValueError(f"the input needs a {INPUT_COLUMN!r} column of JPEG bytes; got {list(model_input.columns)}")
        scores = self._classifier.score([bytes(jpeg) for jpeg in model_input[INPUT_COLUMN]])
        # top-k over every class, best first -> back to class order; a rejected chip is all NaN.
        indices, top = scores["top_k_indices"], scores["top_k_probs"]
        probabilities = np.full(indices.shape, np.nan)
        scored = indices[:, 0] >= 0
        in_order = probabilities[scored]
        np.put_along_axis(in_order, indices[scored], top[scored], axis=1)
        probabilities[scored] = in_order
        return pd.DataFrame(
            {
                LABEL: [labels[0] or None for labels in scores["top_k_labels"]],
                PROBABILITY: [float(p[0]) for p in scores["top_k_probs"]],
                PROBABILITIES: [row.astype(np.float64) for row in probabilities],
                REASON: scores["reason"],
            }
        )


def log_classifier(
    classifier_file: Path,
    input_example: pd.DataFrame,
    class_names: Sequence[str],
    metadata: Dict[str, Any],
    registered_model_name: Optional[str],
) -> Any:
    """Log the pyfunc model as ``model`` of the active run (and register it); return its ModelInfo.

    The signature is inferred from the example's real prediction, so it states the
    output columns as they are.
    """
    model = ChipClassifierModel.of_file(classifier_file)
    signature = infer_signature(input_example, model.predict(None, input_example))
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        artifacts={PYFUNC_ARTIFACT: str(classifier_file)},
        signature=signature,
        input_example=input_example,
        metadata={**metadata, "class_names": list(class_names)},
        registered_model_name=registered_model_name,
    )
