"""Keep secrets out of what a run logs: params, ``config.yaml``, tags and printed lines.

The resolved config holds ``mlflow.tracking_uri`` (``postgresql://user:password@host/db``)
and every ``spark.conf`` key (``spark.hadoop.fs.s3a.secret.key``); both reach MLflow and
the console unless redacted here. Redaction is for what is shown; step keys still hash
the real values, so changing a credential never silently reuses another run's result.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Mapping, Pattern

REDACTED = "***"
# Key names whose values are secrets, searched case-insensitively in a dotted key path
# (``spark.hadoop.fs.s3a.secret.key``), an override (``+db.Password=x``) or a URL query
# parameter (``?sig=``). Spark's own ``spark.redaction.regex`` default comes first
# (``secret|password|token|access[.]key``), then the cloud stores' credential keys:
# ``fs.azure.account.key.*`` and ``fs.s3a.access.key`` (key), ``fs.azure.sas.*`` and an
# Azure SAS URL's ``sig=``, ``X-Amz-Signature``/``X-Amz-Credential`` of a presigned S3 URL,
# ``google.cloud.auth.service.account.json.keyfile``. Users add their own with
# ``redact.extra_keys``.
SECRET_KEY_PATTERNS = (
    "secret", "password", "token", r"access[._-]?key",
    "passwd", "pwd", r"(?<![a-z0-9])key(?![a-z])", "apikey", "keyfile", "credential", "auth", "private",
    "signature", r"(?<![a-z0-9])sig(?![a-z0-9])", r"(?<![a-z0-9])sas(?![a-z0-9])",
)
# ``scheme://user[:password]@host``: the user-info part is everything between ``//`` and ``@``.
_URI_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
# ``name=value`` as in an override, a query string or ``override_dirname``: the value runs
# to the next white space or ``&`` unless quoted, and to a ``,`` that starts the next
# ``name=`` (a sweep's ``key=a,b`` is one value).
_ASSIGNMENT = re.compile(
    r"(?<![\w.\-])(?P<name>[A-Za-z_][\w.\-]*)=(?P<value>'[^']*'|\"[^\"]*\"|(?:[^\s&,'\"]|,(?![+~]*[A-Za-z_][\w.\-]*=))+)"
)


def secret_key_pattern(extra_keys: Iterable[str] = ()) -> Pattern[str]:
    """One case-insensitive regex for :data:`SECRET_KEY_PATTERNS` plus ``extra_keys``
    (each a regex; a plain word matches every key containing it)."""
    patterns = [*SECRET_KEY_PATTERNS, *extra_keys]
    for pattern in extra_keys:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"redact.extra_keys: {pattern!r} is not a regular expression ({error}); "
                             "write a plain word or a valid Python regex") from error
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


SECRET_KEY = secret_key_pattern()


def is_secret_key(name: str, secret_key: Pattern[str] = SECRET_KEY) -> bool:
    """True for a (dotted) config key whose value must not be shown."""
    return bool(secret_key.search(name))


def redact_text(text: str, secret_key: Pattern[str] = SECRET_KEY) -> str:
    """``text`` with the user-info of every URI in it and the value of every
    ``secret-key=value`` assignment (overrides, URL query parameters) replaced by ``***``."""
    return _redact_assignments(_URI_USER_INFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text), secret_key)


def _redact_assignments(text: str, secret_key: Pattern[str]) -> str:
    """Every secret ``name=value`` in ``text`` as ``name=***``; the value of any other
    assignment is searched too (``source='https://host/x?sig=...'``)."""

    def shown(match: re.Match) -> str:
        name, value = match.group("name"), match.group("value")
        return f"{name}={REDACTED if is_secret_key(name, secret_key) else _redact_assignments(value, secret_key)}"

    return _ASSIGNMENT.sub(shown, text)


def redact(value: Any, key: str = "", secret_key: Pattern[str] = SECRET_KEY) -> Any:
    """A copy of a plain config container safe to log.

    Values under a secret-looking key (:func:`is_secret_key`, checked on the dotted path
    so far) become ``***``; every other string goes through :func:`redact_text`.
    """
    if isinstance(value, Mapping):
        return {k: redact(v, f"{key}.{k}" if key else str(k), secret_key) for k, v in value.items()}
    if key and is_secret_key(key, secret_key) and value is not None:
        return REDACTED
    if isinstance(value, (list, tuple)):
        return [redact(v, secret_key=secret_key) for v in value]
    if isinstance(value, str):
        return redact_text(value, secret_key)
    return value


def config_secret_keys(cfg: Any) -> Pattern[str]:
    """The secret-key regex for a composed config: the maintained list plus its
    ``redact.extra_keys`` (absent in a config that has no ``redact`` group)."""
    redact_cfg = cfg.get("redact") if hasattr(cfg, "get") else None
    return secret_key_pattern(list(redact_cfg.extra_keys) if redact_cfg else ())


class RedactingFilter(logging.Filter):
    """A logging filter that removes URI user-info and secret assignments from every
    formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
