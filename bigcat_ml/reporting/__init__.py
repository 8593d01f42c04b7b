"""Reports: pure matplotlib figures (one module per step), the preprocess step's exploratory figures, the comparison of evaluations, main's headline."""
