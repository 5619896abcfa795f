"""Passwords stored at rest (``irc storepass``), encrypted with a key derived from the as_token.

AES-256-GCM from ``cryptography`` (a required dependency of the ``irc`` extra): a changed
ciphertext or a wrong key is detected rather than decrypted to garbage. Tokens are ``v1:``
followed by base64 of nonce + ciphertext + tag.

Releases before this one fell back to a construction of their own (``v0:``, an HMAC-SHA256
keystream) when ``cryptography`` was missing. Such values are still read, by
:func:`_read_v0` and nothing else, so that the connector can rewrite them as ``v1:`` when it
loads them (:meth:`SecretBox.needs_upgrade`); nothing is written in that format any more.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

__all__ = ["SecretBox", "SecretError"]

#: ``cryptography``'s AESGCM class, imported on first use: the library costs about 5.7 MiB of
#: RSS, which a bridge where nobody ran ``irc storepass`` need not pay.
AESGCM: Any = ...


class SecretError(ValueError):
    """The ciphertext was tampered with or the key is wrong."""


def _aesgcm() -> Any:
    global AESGCM
    if AESGCM is ...:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM as cls
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "stored IRC passwords need the 'cryptography' package: "
                "install bridgekit[irc] (or pip install cryptography)"
            ) from e
        AESGCM = cls
    return AESGCM


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("key must be at least 32 bytes")
        self._enc = hmac.new(key, b"irc-secret-enc", hashlib.sha256).digest()
        self._mac = hmac.new(key, b"irc-secret-mac", hashlib.sha256).digest()

    def encrypt(self, plaintext: str, context: str = "") -> str:
        nonce = os.urandom(12)
        sealed = _aesgcm()(self._enc).encrypt(nonce, plaintext.encode("utf-8"), context.encode())
        return "v1:" + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str = "") -> str:
        version, _, b64 = token.partition(":")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError as e:
            raise SecretError("not a stored secret") from e
        if version == "v1":
            try:
                data = _aesgcm()(self._enc).decrypt(raw[:12], raw[12:], context.encode())
            except Exception as e:
                raise SecretError("cannot decrypt (wrong key or tampered)") from e
            return data.decode("utf-8")
        if version == "v0":
            return _read_v0(self._enc, self._mac, raw, context)
        raise SecretError(f"unknown secret format {version!r}")

    @staticmethod
    def needs_upgrade(token: str) -> bool:
        """Whether ``token`` is in a format that should be rewritten with :meth:`encrypt`."""
        return not token.startswith("v1:")


def _read_v0(enc: bytes, mac: bytes, raw: bytes, context: str) -> str:
    """Decrypt a value of the retired ``v0`` format, only to migrate it to ``v1``."""
    nonce, body, tag = raw[:12], raw[12:-32], raw[-32:]
    expected = hmac.new(mac, nonce + body + context.encode(), hashlib.sha256).digest()
    if len(raw) < 44 or not hmac.compare_digest(tag, expected):
        raise SecretError("cannot decrypt (wrong key or tampered)")
    stream = bytearray()
    for counter in range((len(body) + 31) // 32):
        stream += hmac.new(enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(body, stream, strict=False)).decode("utf-8")
