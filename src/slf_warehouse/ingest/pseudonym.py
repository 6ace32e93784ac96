"""Employee numbers become keyed hashes before anything reaches the warehouse."""

from __future__ import annotations

import hashlib
import hmac
import os
import warnings

from slf_warehouse.ingest.errors import ConfigurationError
from slf_warehouse.settings import PSEUDONYM_KEY_ENV as KEY_ENV

# Airflow masks Variables whose name contains "secret" (UI, REST API, task logs); the old name did not.
KEY_VARIABLE = "slf_pseudonym_key_secret"
OLD_KEY_VARIABLE = "slf_pseudonym_key"


def pseudonym_key() -> bytes:
    """The HMAC key: environment first, then the Airflow Variable; never a default.

    A default key would make the pseudonyms reversible by anyone who reads this code, so a
    missing key stops the load.
    """
    key = os.environ.get(KEY_ENV)
    if not key:
        try:
            from airflow.sdk import Variable

            key = Variable.get(KEY_VARIABLE, default=None)
            if not key and (key := Variable.get(OLD_KEY_VARIABLE, default=None)):
                warnings.warn(
                    f"the Airflow Variable {OLD_KEY_VARIABLE} is shown unmasked in the UI and API: "
                    f"rename it to {KEY_VARIABLE}",
                    FutureWarning,
                    stacklevel=2,
                )
        except Exception:  # outside a running Airflow task there is no Variable backend to ask
            key = None
    if not key or len(key) < 16:
        raise ConfigurationError(
            f"No pseudonymisation key: set the environment variable {KEY_ENV} or the Airflow Variable "
            f"{KEY_VARIABLE} to a secret of at least 16 characters. Payroll files are not loaded without it."
        )
    return key.encode()


def pseudonymise(values: list[str], key: bytes) -> list[tuple[str, str]]:
    return [(v, hmac.new(key, v.encode(), hashlib.sha256).hexdigest()) for v in values]
