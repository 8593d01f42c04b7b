"""The real Open Images hierarchy, copied into the repository for the tests.

Public data (CC BY 4.0); provenance in ``tests/data/oid-metadata/README.md``. Kept inside
the repository so the suite needs nothing beside the checkout.
"""
from pathlib import Path

REAL_HIERARCHY = Path(__file__).resolve().parents[1] / "data" / "oid-metadata" / "bbox_labels_600_hierarchy.json"
