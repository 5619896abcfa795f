"""Signed media links for remote networks.

Since Matrix 1.11 media downloads need an access token, so a plain ``/_matrix/media`` link
handed to an IRC or XMPP user no longer works. The bridge serves ``/_bridgekit/media/...``
links instead: each carries an HMAC of the mxc URI (keyed from the as_token), so only media the
bridge chose to share can be fetched, and the bridge downloads it with its own token. They are
served on the appservice listener, or with ``media.port`` on a listener of their own that serves
nothing else (exposing media to the internet then does not expose the appservice API).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import TYPE_CHECKING

from aiohttp import web

from ..contract.http_listener import start_listener, stop_listener

if TYPE_CHECKING:
    from ..config import Config
    from ..settings import Settings
    from .client import MatrixClient

log = logging.getLogger("bridgekit.matrix.media")

ROUTE = "/_bridgekit/media/{server}/{media_id}/{sig}/{name}"
_SAFE_RE = re.compile(r"^[A-Za-z0-9._:\-]+$")
_PASS_HEADERS = ("Content-Type", "Content-Length", "Content-Disposition", "Cache-Control")


def linkable(mxc: object) -> bool:
    """Whether ``mxc`` is an ``mxc://server/media_id`` URI the media links can serve (any
    other string, from an untrusted event, gets no link rather than a broken one)."""
    if not isinstance(mxc, str) or not mxc.startswith("mxc://"):
        return False
    server, _, media_id = mxc[len("mxc://") :].partition("/")
    return bool(_SAFE_RE.match(server) and _SAFE_RE.match(media_id))


class MediaSigner:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("bridgekit-media:" + secret).encode()).digest()

    def sign(self, server: str, media_id: str) -> str:
        mac = hmac.new(self._key, f"{server}/{media_id}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def verify(self, server: str, media_id: str, sig: str) -> bool:
        return hmac.compare_digest(self.sign(server, media_id), sig)

    def url(
        self, base: str, mxc: str, filename: str = "", file: dict[str, str] | None = None
    ) -> str:
        """The link to ``mxc``; with ``file`` (an encrypted attachment's keys) a link that
        serves the decrypted bytes: the keys ride in the signed path, so the link works after
        a restart, and it gives exactly what its holder was meant to see."""
        if not mxc.startswith("mxc://") or "/" not in mxc[6:]:
            raise ValueError(f"not an mxc URI: {mxc!r}")
        server, media_id = mxc[len("mxc://") :].split("/", 1)
        name = re.sub(r"[^A-Za-z0-9._\-]", "_", filename) or media_id
        if file is not None:
            keys = ".".join(_urlsafe(file[k]) for k in ("k", "iv", "sha256"))
            sig = self.sign(server, f"{media_id}/{keys}")
            return f"{base.rstrip('/')}/_bridgekit/media/{server}/{media_id}/{keys}/{sig}/{name}"
        sig = self.sign(server, media_id)
        return f"{base.rstrip('/')}/_bridgekit/media/{server}/{media_id}/{sig}/{name}"


def _urlsafe(b64: str) -> str:
    return b64.replace("+", "-").replace("/", "_").rstrip("=")


class MediaServer:
    """The media links' routes: on the appservice's application, or, with ``media.port``, on
    an application of their own that :meth:`start` serves."""

    def __init__(
        self,
        settings: Settings,
        signer: MediaSigner,
        matrix: MatrixClient,
        appservice_app: web.Application,
    ) -> None:
        self.port = settings.media.port
        self.host = settings.media.hostname or settings.appservice.hostname
        self.app = web.Application() if self.port else appservice_app
        self.runner: web.AppRunner | None = None
        add_routes(self.app, signer, matrix)

    async def start(self) -> None:
        if not self.port:
            return
        self.runner = await start_listener(self.app, self.host, int(self.port))
        log.info("Media links served on %s:%d", self.host, int(self.port))

    async def stop(self) -> None:
        if self.runner is not None:
            runner, self.runner = self.runner, None
            await stop_listener(runner)


def public_base(config: Config) -> str:
    """Where remote users reach the media links: ``media.public_address``, else the media
    listener's own address when it has one, else the appservice's public address."""
    media, appservice = config.settings.media, config.settings.appservice
    if media.public_address:
        return media.public_address
    if media.port:
        host = media.hostname or appservice.hostname
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{media.port}"
    return appservice.public_address or appservice.address


def add_routes(app: web.Application, signer: MediaSigner, matrix: MatrixClient) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        server = request.match_info["server"]
        media_id = request.match_info["media_id"]
        sig = request.match_info["sig"]
        if not (_SAFE_RE.match(server) and _SAFE_RE.match(media_id)):
            raise web.HTTPNotFound()
        if not signer.verify(server, media_id, sig):
            raise web.HTTPNotFound()
        session = matrix.session
        assert session is not None
        url = f"{matrix.homeserver}/_matrix/client/v1/media/download/{server}/{media_id}"
        headers = {"Authorization": f"Bearer {matrix.as_token}"}
        async with session.get(url, headers=headers) as upstream:
            if upstream.status != 200:
                log.info("Media %s/%s: homeserver answered %d", server, media_id, upstream.status)
                raise web.HTTPNotFound()
            resp = web.StreamResponse(
                headers={h: upstream.headers[h] for h in _PASS_HEADERS if h in upstream.headers}
            )
            await resp.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    app.router.add_get(ROUTE, handle)
