"""End-to-bridge encryption: the bridge's own device decrypts what Matrix users send to
encrypted portals and encrypts what it sends there.

The runtime speaks to a :class:`~bridgekit.crypto.backend.CryptoBackend` (backend.py), so the
library behind it can change: today mautrix.crypto on libolm (mautrix_backend.py; libolm is
deprecated upstream, a vodozemac backend can replace it behind the same interface). Nothing
here is imported unless ``encryption.allow`` is true: the ``e2ee`` extra is optional.
"""

from __future__ import annotations

import importlib.util

#: The modules the ``e2ee`` extra installs (import name -> distribution name).
_EXTRA_MODULES = {
    "olm": "python-olm",
    "Crypto": "pycryptodome",
    "unpaddedbase64": "unpaddedbase64",
    "base58": "base58",
}


def missing_extra() -> str | None:
    """The first distribution of the ``e2ee`` extra that is not installed, or None."""
    for module, dist in _EXTRA_MODULES.items():
        if importlib.util.find_spec(module) is None:
            return dist
    return None
