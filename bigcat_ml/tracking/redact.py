"""Keep secrets out of what a run logs: params, ``config.yaml``, tags and printed lines.

The resolved config holds ``mlflow.tracking_uri`` (``postgresql://user:password@host/db``)
and every ``spark.conf`` key (``spark.hadoop.fs.s3a.secret.key``); both reach MLflow and
the console unless redacted here. Redaction is for what is shown; step keys still hash
the real values, so changing a credential never silently reuses another run's result.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping

REDACTED = "***"
# A key whose last dotted parts name a secret; matched case-insensitively anywhere in
# the dotted path (``spark.hadoop.fs.s3a.secret.key``, ``db.Password``, ``api_token``).
SECRET_KEY = re.compile(r"secret|password|passwd|token|key|credential", re.IGNORECASE)
# ``scheme://user[:password]@host``: the user-info part is everything between ``//`` and ``@``.
_URI_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def redact_text(text: str) -> str:
    """``text`` with the user-info of every URI in it replaced by ``***``."""
    return _URI_USER_INFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def is_secret_key(name: str) -> bool:
    """True for a (dotted) config key whose value must not be shown."""
    return bool(SECRET_KEY.search(name))


def redact(value: Any, key: str = "") -> Any:
    """A copy of a plain config container safe to log.

    Values under a secret-looking key (:func:`is_secret_key`, checked on the dotted path
    so far) become ``***``; every other string has its URI user-info removed.
    """
    if isinstance(value, Mapping):
        return {k: redact(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if key and is_secret_key(key) and value is not None:
        return REDACTED
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that removes URI user-info from every formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
