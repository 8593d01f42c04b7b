"""Reports: pure matplotlib figures, the preprocess step's exploratory figures, the comparison of evaluations, main's headline."""
