"""Credentials out of messages: URLs such as ``rtsp://admin:pass@10.0.0.7/ch1`` lose their user info.

Camera URLs often carry a user and password, and S3 or webhook URLs sometimes carry a key in the query.
Everything the platform says about a URL — log lines, alert details, audit events, ``ssz status``,
error messages — goes through :func:`redact` (strings) or :func:`redact_obj` (nested JSON-like values)
first, so the secret never reaches a log file, the twin, the locked audit mirror or a screen.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

# scheme://user[:password]@host  ->  scheme://***@host   (any scheme: rtsp, rtsps, http(s), s3, rtmp, ...)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,15}://)[^/\s@?#]+@")
# user:password@host without a scheme (a camera address typed without rtsp://, or one inside a path):
# admin:pass@10.0.0.5  ->  ***@10.0.0.5
_BARE_USERINFO = re.compile(r"(^|[\s'\"(/\\=,;<\[])[^\s/@'\"?#:=]*:[^\s/@'\"?#]*@(?=[\w\[])")
# ?password=...&token=...  ->  ?password=***&token=***
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|passphrase|streamid|token|access_token|secret|key|apikey|api_key|signature|sig|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|auth)=)[^&\s#\"']+")


def redact(text: str) -> str:
    """``text`` with the user info of every URL (``user:pass@`` also without a scheme) and secret-looking query
    values replaced by ``***``.

    >>> redact("rtsp://admin:hunter2@10.0.0.7:554/ch1?token=abc&fps=5 went offline")
    'rtsp://***@10.0.0.7:554/ch1?token=***&fps=5 went offline'
    """
    if "://" not in text and "=" not in text and "@" not in text:
        return text
    text = _BARE_USERINFO.sub(rf"\g<1>{MASK}@", _USERINFO.sub(rf"\g<1>{MASK}@", text))
    return _SECRET_PARAM.sub(rf"\g<1>{MASK}", text)


def redact_obj(value: Any) -> Any:
    """A copy of a JSON-like value (dict / list / tuple / str / scalar) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_obj(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL credentials in every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops a record."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = redact_obj(record.args) if isinstance(record.args, tuple | dict) else record.args
        return True


def install_log_redaction() -> None:
    """Add :class:`RedactingFilter` to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for h in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())
    if not any(isinstance(f, RedactingFilter) for f in root.filters):
        root.addFilter(RedactingFilter())
