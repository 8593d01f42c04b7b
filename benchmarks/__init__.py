"""Reproducible measurements of bigcat_ml on one machine: ``python -m benchmarks.run``.

Each run measures the Spark paths and their plain single-process counterparts in the
same process, one after the other, so the ratios are comparable even when absolute
numbers drift with the machine's load. Results go to ``benchmarks/results/latest.json``
and a Markdown summary to ``latest.md``.
"""
