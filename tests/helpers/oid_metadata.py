"""The real Open Images hierarchy the tests walk.

Public data (CC BY 4.0); provenance in ``tools/oid-metadata/README.md``. Kept inside the
repository, once, beside the build-time tool that reads it too, so the suite needs nothing
beside the checkout.
"""
from pathlib import Path

REAL_HIERARCHY = Path(__file__).resolve().parents[2] / "tools" / "oid-metadata" / "bbox_labels_600_hierarchy.json"
