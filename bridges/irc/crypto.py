"""Passwords stored at rest (``irc storepass``), encrypted with a key derived from the as_token.

AES-256-GCM from ``cryptography`` when it is installed; otherwise a stdlib construction:
an HMAC-SHA256 counter-mode keystream plus an HMAC-SHA256 tag (encrypt-then-MAC). Either way a
changed ciphertext or a wrong key is detected rather than decrypted to garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

#: ``cryptography``'s AESGCM class, imported on first use: the library costs about 5.7 MiB of
#: RSS, which a bridge where nobody ran ``irc storepass`` need not pay. None: not installed.
AESGCM: Any = ...


def _aesgcm() -> Any:
    global AESGCM
    if AESGCM is ...:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM as cls
        except ImportError:  # pragma: no cover - depends on the environment
            cls = None
        AESGCM = cls
    return AESGCM


__all__ = ["SecretBox", "SecretError"]


class SecretError(ValueError):
    """The ciphertext was tampered with or the key is wrong."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("key must be at least 32 bytes")
        self._enc = hmac.new(key, b"irc-secret-enc", hashlib.sha256).digest()
        self._mac = hmac.new(key, b"irc-secret-mac", hashlib.sha256).digest()

    def encrypt(self, plaintext: str, context: str = "") -> str:
        data = plaintext.encode("utf-8")
        nonce = os.urandom(12)
        aesgcm = _aesgcm()
        if aesgcm is not None:
            sealed = aesgcm(self._enc).encrypt(nonce, data, context.encode())
            return "v1:" + base64.b64encode(nonce + sealed).decode()
        stream = self._keystream(nonce, len(data))
        body = bytes(a ^ b for a, b in zip(data, stream, strict=True))
        tag = hmac.new(self._mac, nonce + body + context.encode(), hashlib.sha256).digest()
        return "v0:" + base64.b64encode(nonce + body + tag).decode()

    def decrypt(self, token: str, context: str = "") -> str:
        version, _, b64 = token.partition(":")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError as e:
            raise SecretError("not a stored secret") from e
        nonce = raw[:12]
        if version == "v1":
            aesgcm = _aesgcm()
            if aesgcm is None:
                raise SecretError("stored with AES-GCM but cryptography is not installed")
            try:
                data = aesgcm(self._enc).decrypt(nonce, raw[12:], context.encode())
            except Exception as e:
                raise SecretError("cannot decrypt (wrong key or tampered)") from e
            return data.decode("utf-8")
        if version == "v0":
            body, tag = raw[12:-32], raw[-32:]
            expected = hmac.new(self._mac, nonce + body + context.encode(), hashlib.sha256).digest()
            if len(raw) < 44 or not hmac.compare_digest(tag, expected):
                raise SecretError("cannot decrypt (wrong key or tampered)")
            stream = self._keystream(nonce, len(body))
            return bytes(a ^ b for a, b in zip(body, stream, strict=True)).decode("utf-8")
        raise SecretError(f"unknown secret format {version!r}")

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < length:
            out += hmac.new(self._enc, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return bytes(out[:length])
