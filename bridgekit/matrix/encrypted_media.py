"""Attachments in encrypted rooms: a client there encrypts the file itself (AES-CTR) and the
event carries ``file: {url, key, iv, hashes, v}`` instead of ``url``; the bridge does the same
for the files it sends there, so the media repository holds no plaintext of such a room.

Connectors see only the ``mxc://`` URI (``MessageContent.media_url``, the ``file``'s ``url``):
the runtime remembers the keys of the encrypted files it has seen (:data:`KEYS`), and
:func:`download` decrypts what it fetches when the URI is one of them, so ``download_media``
and the signed media links give every connector the plaintext without a change.
``mautrix.crypto.attachments`` (pycryptodome, the ``e2ee`` extra) is imported only when used.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import mimetypes
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from ..contract.connector import MediaError
from .media import MediaSigner, linkable

if TYPE_CHECKING:
    from .client import MatrixClient

log = logging.getLogger("bridgekit.matrix.encrypted_media")

#: An encrypted attachment's signed link (:meth:`MediaSigner.url` with its keys): the keys
#: (``k.iv.sha256``, base64url) are part of what is signed.
ENCRYPTED_ROUTE = "/_bridgekit/media/{server}/{media_id}/{keys}/{sig}/{name}"
_KEYS_RE = re.compile(r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$")


class EncryptedFileError(MediaError):
    """An encrypted attachment that cannot be decrypted (malformed ``file``, wrong hash)."""


def parse_file(obj: Any) -> dict[str, str] | None:
    """The parts of an event's ``file`` needed to fetch and decrypt it (``url``, ``k``,
    ``iv``, ``sha256``), or None when it is not a well-formed encrypted file (an untrusted
    event's ``file`` is checked here, before anything uses it)."""
    if not isinstance(obj, dict):
        return None
    key, hashes = obj.get("key"), obj.get("hashes")
    if not isinstance(key, dict) or not isinstance(hashes, dict):
        return None
    parsed = {"url": obj.get("url"), "k": key.get("k"), "iv": obj.get("iv")}
    parsed["sha256"] = hashes.get("sha256")
    if not all(isinstance(v, str) and v for v in parsed.values()) or not linkable(parsed["url"]):
        return None
    return parsed  # type: ignore[return-value]


class FileKeys:
    """The keys of the encrypted files seen in recent events, by ``mxc://`` URI (bounded:
    a message is bridged soon after it is read, and a replayed event is read again)."""

    def __init__(self, limit: int = 4096) -> None:
        self._keys: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._limit = limit

    def remember(self, file: dict[str, str]) -> None:
        self._keys[file["url"]] = file
        self._keys.move_to_end(file["url"])
        while len(self._keys) > self._limit:
            self._keys.popitem(last=False)

    def get(self, mxc: str) -> dict[str, str] | None:
        return self._keys.get(mxc)

    def forget(self, mxc: str) -> None:
        self._keys.pop(mxc, None)


#: Process-wide: an mxc URI names one file whichever bridge saw it.
KEYS = FileKeys()


def _decrypt(data: bytes, file: dict[str, str]) -> bytes:
    from mautrix.crypto.attachments import decrypt_attachment
    from mautrix.errors import DecryptionError

    try:
        return decrypt_attachment(data, file["k"], file["sha256"], file["iv"])
    except (DecryptionError, binascii.Error, ValueError, TypeError) as e:
        raise EncryptedFileError(f"the encrypted file does not decrypt ({e})") from e


async def decrypt(data: bytes, file: dict[str, str]) -> bytes:
    """The plaintext of an encrypted attachment; :class:`EncryptedFileError` when its hash or
    keys are wrong. Off the event loop (AES over megabytes)."""
    return await asyncio.to_thread(_decrypt, data, file)


async def encrypt(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """The ciphertext of ``data`` and the ``file`` object (without its ``url``) that
    decrypts it."""
    from mautrix.crypto.attachments import encrypt_attachment

    ciphertext, info = await asyncio.to_thread(encrypt_attachment, data)
    return ciphertext, info.serialize()


async def download(matrix: MatrixClient, mxc: str, max_size: int) -> tuple[bytes, str]:
    """The bytes and content type of Matrix media, as the bot, at most ``max_size`` bytes;
    decrypted when ``mxc`` is an encrypted file seen in an event (:data:`KEYS`).
    Raises :class:`MediaError` (``too_large`` for the size)."""
    data, mime = await download_raw(matrix, mxc, max_size)
    file = KEYS.get(mxc)
    if file is not None:
        return await decrypt(data, file), file.get("mimetype") or "application/octet-stream"
    return data, mime


async def download_raw(matrix: MatrixClient, mxc: str, max_size: int) -> tuple[bytes, str]:
    """Matrix media as the homeserver stores it (ciphertext for an encrypted file)."""
    if not linkable(mxc):
        raise MediaError("not a Matrix media URI")
    session = matrix.session
    assert session is not None
    server, _, media_id = mxc[len("mxc://") :].partition("/")
    url = f"{matrix.homeserver}/_matrix/client/v1/media/download/{server}/{media_id}"
    headers = {"Authorization": f"Bearer {matrix.as_token}"}
    try:
        async with session.get(url, headers=headers) as resp:
            if resp.status != 200:
                log.info("Media %s: the homeserver answered %d", mxc, resp.status)
                raise MediaError("the homeserver does not have it")
            if resp.content_length is not None and resp.content_length > max_size:
                raise MediaError(f"larger than {max_size} bytes", too_large=True)
            data = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > max_size:
                    raise MediaError(f"larger than {max_size} bytes", too_large=True)
            mime = resp.headers.get("Content-Type", "").split(";")[0].strip()
    except (aiohttp.ClientError, OSError) as e:
        raise MediaError("could not download it from the homeserver") from e
    return bytes(data), mime or "application/octet-stream"


#: The largest encrypted file whose hash the runtime checks before the network sees it
#: (a larger one is checked when a connector downloads it).
CHECK_LIMIT = 64 * 1024 * 1024


async def file_refusal(matrix: MatrixClient, content: dict[str, Any]) -> str | None:
    """Why a Matrix event's encrypted attachment must not reach the network (a malformed
    ``file``, or ciphertext that does not match its hash), or None. Checked once before any
    connector sees it, so a link-sending network (IRC) never passes on a broken file."""
    if "url" in content or "file" not in content:
        return None
    file = parse_file(content["file"])
    if file is None:
        return "its encrypted file is malformed"
    try:
        await download(matrix, file["url"], CHECK_LIMIT)
    except EncryptedFileError:
        log.info("Encrypted file %s does not match its hash or keys", file["url"])
        KEYS.forget(file["url"])  # wrong keys for that URI are not kept for later downloads
        return "its encrypted file does not match its hash (it was altered or is broken)"
    except MediaError as e:
        if not e.too_large:
            return f"its file could not be read: {e}"
    return None


def add_link_route(
    app: web.Application, signer: MediaSigner, matrix: MatrixClient, max_size: int
) -> None:
    """Serve encrypted attachments' signed links on the media links' application: the
    ciphertext fetched as the bot, decrypted (at most ``max_size`` bytes), or a 404."""

    async def handle_encrypted(request: web.Request) -> web.Response:
        server, media_id = request.match_info["server"], request.match_info["media_id"]
        keys, sig = request.match_info["keys"], request.match_info["sig"]
        mxc = f"mxc://{server}/{media_id}"
        if not (linkable(mxc) and _KEYS_RE.match(keys)):
            raise web.HTTPNotFound()
        if not signer.verify(server, f"{media_id}/{keys}", sig):
            raise web.HTTPNotFound()
        k, iv, sha256 = keys.split(".")
        try:
            data, _ = await download_raw(matrix, mxc, max_size)
            data = await decrypt(data, {"k": k, "iv": iv, "sha256": sha256})
        except MediaError as e:
            log.info("Encrypted media %s/%s not served: %s", server, media_id, e)
            raise web.HTTPNotFound() from None
        mime = mimetypes.guess_type(request.match_info["name"])[0] or "application/octet-stream"
        return web.Response(body=data, content_type=mime)

    app.router.add_get(ENCRYPTED_ROUTE, handle_encrypted)
