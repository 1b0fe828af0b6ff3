"""TLS client contexts: the one place that turns CA, certificate and key settings into an ``ssl.SSLContext``.

Used for Kafka (:meth:`services.config.KafkaSettings.client_kwargs`) and for the analytics endpoint
(:func:`services.sender.__main__.serve` via :meth:`services.config.SenderConfig.endpoint_ssl_context`).
Verification stays on (certificate chain and host name) unless the caller says otherwise; a file that
cannot be read, or a key that does not match its certificate, is a :class:`~services.errors.ConfigError`
naming the setting.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from services.errors import ConfigError

__all__ = ["TlsFiles", "client_context"]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of one TLS client, and the setting names that configure them (for error messages)."""

    cafile: str | None
    certfile: str | None
    keyfile: str | None
    cafile_setting: str
    certfile_setting: str
    keyfile_setting: str


def client_context(files: TlsFiles, *, default_cafile: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client-side context trusting ``files.cafile`` (else ``default_cafile``, else the system CAs) and,
    when ``files.certfile`` is set, presenting that certificate (mutual TLS).

    Raises:
        ConfigError: a file cannot be read or parsed, or the key does not belong to the certificate.
    """
    cafile = files.cafile or default_cafile
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        setting = files.cafile_setting if files.cafile else "the default CA bundle"
        raise ConfigError(f"cannot load {setting}={cafile!r}: {exc}; point it at a readable PEM file") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if files.certfile is not None:
        try:
            context.load_cert_chain(files.certfile, files.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the client certificate {files.certfile_setting}={files.certfile!r} with "
                f"{files.keyfile_setting}={files.keyfile!r}: {exc}; both must be readable PEM files and the key "
                "must belong to the certificate"
            ) from exc
    return context
