"""Reports: pure matplotlib figures and the preprocess step's exploratory figures."""
