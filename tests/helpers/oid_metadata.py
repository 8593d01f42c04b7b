"""The real Open Images hierarchy the tests walk.

Public data (CC BY 4.0); provenance in ``bigcat_ml/synthetic/resources/README.md``. Committed
once, in the package, which prunes it for the generated sample; the build-time tool reads it too.
"""
from pathlib import Path

from bigcat_ml.synthetic import catalogue

REAL_HIERARCHY = Path(__file__).resolve().parents[2] / "bigcat_ml" / "synthetic" / "resources" / catalogue.HIERARCHY_FILE
