"""Credentials inside URLs: ``https://user:pw@host`` is shown as ``https://user:***@host``, everywhere.

One function, :func:`mask_url_credentials`, used wherever text that may hold a configured URL leaves the
process: the startup config line (:func:`services.config.config_summary`), configuration errors
(:func:`services.config.load_config`), every log line (:func:`services.logging.redact_secrets`, on every
string value) and the Kafka failure messages (:mod:`services.kafka_errors`). ``--help`` shows only
defaults, never the environment, and ``/metrics`` exports no URL.

Both ``scheme://user:password@`` and ``scheme://token@`` forms are masked; the user name stays (it is
what an operator needs to tell which account is configured), anything after a ``:`` in the user-info is
replaced. Kafka-style addresses with a scheme (``SASL_SSL://user:pw@broker:9093``) are URLs too.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MASK", "mask_url_credentials"]

MASK: Final = "***"

# scheme "://" userinfo "@": the userinfo has no '/', '@' or whitespace (RFC 3986 forbids them unescaped).
_USERINFO: Final = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-_]*://)(?P<userinfo>[^/@\s'\"]+)@")


def _mask(match: re.Match[str]) -> str:
    user, colon, _password = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}:{MASK}@" if colon else f"{match.group('scheme')}{MASK}@"


def mask_url_credentials(text: str) -> str:
    """``text`` with the password (or lone token) of every ``scheme://user:password@`` replaced by ``***``.

    >>> mask_url_credentials("POST https://svc:hunter2@analytics.example.com/x failed")
    'POST https://svc:***@analytics.example.com/x failed'
    >>> mask_url_credentials("https://tok123@host and http://host:8080/ok")
    'https://***@host and http://host:8080/ok'
    """
    if "@" not in text:  # the common case: no regex search at all
        return text
    return _USERINFO.sub(_mask, text)
