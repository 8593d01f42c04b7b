"""Top-k ImageNet predictions for every chip, on Spark (:mod:`.spark`) or in one process (:mod:`.local`).

Both paths run the same :class:`~bigcat_ml.scoring.inference.classifier.ChipClassifier`
(decode with the ChipSchema codec, bilinear resize to the model input, the model's
``preprocess_input``, softmax probabilities, top-k), so they give the same numbers for the
same chips. Each chip becomes exactly one row of the tables in :mod:`.tables`: a
prediction (its ChipSchema columns without the bytes, plus
``top_k_indices``/``top_k_labels``/``top_k_probs``), or a reject (REJECTS_SCHEMA, reason
``decode_error`` or ``predict_error``). ``predictions + rejects == chips read`` is checked
before anything is returned.
"""
