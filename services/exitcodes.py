"""The exit codes every command of the pipeline uses: one table, documented in each ``--help``.

=====  ==========================================================================================
 code  meaning
=====  ==========================================================================================
  0    done (or stopped on SIGTERM/SIGINT after finishing the work in hand)
  1    the command ran and its check failed (``lag --max-lag``), or an unexpected failure
  2    bad usage or configuration: a flag or environment variable is missing or invalid
  3    unreachable: the Kafka brokers (or the HTTP endpoint) could not be reached in time
  4    authentication or TLS failed: wrong SASL credentials, an untrusted or refused certificate,
       or a denied ACL. Retrying with the same settings cannot succeed
=====  ==========================================================================================
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_AUTH", "EXIT_CODES_HELP", "EXIT_FAILED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_AUTH: Final = 4

EXIT_CODES_HELP: Final = """\
exit codes:
  0  done
  1  the check failed, or an unexpected failure (see the last log line)
  2  bad usage or configuration
  3  Kafka or the endpoint could not be reached
  4  authentication or TLS failed (wrong credentials, untrusted certificate, denied ACL)"""
