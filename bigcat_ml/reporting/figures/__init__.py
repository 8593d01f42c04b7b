"""Figures of the preprocess, evaluate and compare steps, one module per step, drawn with :mod:`.canvas`.

Each function is pure: it takes tables (pandas) or images (uint8 RGB arrays, h × w × 3)
and returns a new :class:`matplotlib.figure.Figure`. Figures are built without pyplot,
so nothing is registered in pyplot's global figure list, no GUI backend is involved and
the caller never has to close anything; ``mlflow.log_figure`` or ``fig.savefig`` renders
them (PNG through Agg).
"""
