"""The one way the bridge downloads remote media (links in messages, avatars of any network).

Connectors hand the runtime URLs; only this fetcher opens them. Each fetch:

* goes only to addresses :mod:`bridgekit.matrix.netguard` allows, on every redirect hop too
(followed
  by hand, at most ``media.max_redirects``), connecting to the address that was checked;
* stops reading at ``media.max_size`` (a larger Content-Length is refused before reading) and
  never holds more than that: :meth:`MediaFetcher.open` hands out the body as chunks, which the
  runtime streams to the homeserver when the size was announced (Synapse needs it up front);
* ends after ``media.timeout`` seconds, waiting for a free slot and a streamed upload included,
  so a link that never answers (or trickles) holds its portal's queue no longer than that;
* runs on a connection pool of its own, ``media.concurrency`` fetches at a time, so hanging
  links cannot starve the homeserver connections the bridge sends with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from yarl import URL

from .. import __version__
from ..contract.connector import MediaError
from ..settings import MediaSettings, build
from .netguard import AddressPolicy, GuardedResolver, RefusedAddress

log = logging.getLogger("bridgekit.matrix.fetcher")

#: The defaults are the ``media`` section's (settings.py), written once there.
DEFAULTS: dict[str, Any] = {
    k: getattr(MediaSettings(), k)
    for k in ("max_size", "timeout", "concurrency", "max_redirects", "allow")
}
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class FetchError(MediaError):
    """Why a link was not bridged as media: short, and safe to show in the room."""


class RemoteBody:
    """A remote answer being read: its type, its announced size, and its body in chunks that
    stop at the size cap. ``error`` says why reading the remote side failed, if it did (an
    upload fed by :meth:`chunks` then failed because of the remote, not the homeserver)."""

    def __init__(self, resp: aiohttp.ClientResponse, max_size: int) -> None:
        self._resp = resp
        self.max_size = max_size
        self.size = resp.content_length
        mime = resp.headers.get("Content-Type", "application/octet-stream").split(";")[0]
        self.mime = mime.strip() or "application/octet-stream"
        self.error: FetchError | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        read = 0
        try:
            async for chunk in self._resp.content.iter_chunked(_CHUNK):
                read += len(chunk)
                if read > self.max_size:
                    raise FetchError(f"larger than {_size(self.max_size)}", too_large=True)
                yield chunk
            if self.size is not None and read != self.size:
                raise FetchError("the answer ended early")
        except FetchError as e:
            self.error = e
            raise
        except (aiohttp.ClientError, OSError) as e:
            self.error = FetchError("could not download it")
            raise self.error from e

    async def read(self) -> bytearray:
        """The whole body: at most ``max_size`` bytes are ever held."""
        data = bytearray()
        async for chunk in self.chunks():
            data += chunk
        return data


class MediaFetcher:
    def __init__(
        self,
        *,
        allow: list[str] | tuple[str, ...] = (),
        max_size: int = DEFAULTS["max_size"],
        timeout: float = DEFAULTS["timeout"],
        concurrency: int = DEFAULTS["concurrency"],
        max_redirects: int = DEFAULTS["max_redirects"],
    ) -> None:
        self.policy = AddressPolicy(allow)
        self.max_size = max_size
        self.timeout = float(timeout)
        self.concurrency = concurrency
        self.max_redirects = max_redirects
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    @classmethod
    def from_config(cls, section: Any) -> MediaFetcher:
        media = section if isinstance(section, MediaSettings) else build(MediaSettings, section)
        return cls(**{k: getattr(media, k) for k in DEFAULTS})

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._resolver = GuardedResolver(self.policy)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency, resolver=self._resolver),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Sizes are counted as they arrive: no decompression behind the count's back.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                headers={
                    "User-Agent": f"bridgekit/{__version__}",
                    "Accept-Encoding": "identity",
                },
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:  # given to the connector, so not closed by it
            await self._resolver.close()
            self._resolver = None

    async def fetch(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_size: int | None = None,
        follow_redirects: bool = True,
    ) -> tuple[bytearray, str]:
        """The body of ``url`` (at most ``max_size`` bytes) and its type, or FetchError."""
        async with self.open(
            url, headers=headers, max_size=max_size, follow_redirects=follow_redirects
        ) as body:
            return await body.read(), body.mime

    @asynccontextmanager
    async def open(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        max_size: int | None = None,
        follow_redirects: bool = True,
    ) -> AsyncIterator[RemoteBody]:
        """The answer of ``url``, to read within the ``async with``: the timeout and the
        concurrency slot hold until it ends. Refusals and the remote side's failures raise
        :class:`FetchError`; the caller's own errors pass unchanged.

        ``headers`` go with the request (a network's credentials for its own file host);
        ``max_size`` can only lower ``media.max_size``. With ``follow_redirects`` False a
        redirect is refused rather than followed (credentials never reach another host)."""
        cap = self.max_size if max_size is None else max(0, min(max_size, self.max_size))
        body: RemoteBody | None = None
        try:
            async with asyncio.timeout(self.timeout), self._slots:
                async with self._answer(url, headers, cap, follow_redirects) as resp:
                    body = RemoteBody(resp, cap)
                    yield body
        except Exception as e:
            if body is not None and body.error is not None:
                log.info("Not fetching %s: %s", url, body.error)
                raise body.error from e
            if isinstance(e, FetchError):
                log.info("Not fetching %s: %s", url, e)
                raise
            if isinstance(e, RefusedAddress):
                log.info("Not fetching %s: %s", url, e)
                raise FetchError("its address is not public") from e
            if isinstance(e, TimeoutError):
                log.info("Not fetching %s: no answer within %g s", url, self.timeout)
                raise FetchError(f"no answer within {self.timeout:g} s") from e
            if body is None and isinstance(e, aiohttp.ClientError | OSError | ValueError):
                log.info("Not fetching %s: %s", url, e)
                raise FetchError("could not download it") from e
            raise

    @asynccontextmanager
    async def _answer(
        self, url: str, headers: dict[str, str] | None, cap: int, follow_redirects: bool
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The final answer (200) after redirects, each hop's address checked."""
        current = origin = URL(url)
        for _ in range(self.max_redirects + 1):
            if current.scheme not in ("http", "https") or not current.host:
                raise FetchError("not an http(s) link")
            self.policy.check_literal(current.host, current.port or 0)
            # The caller's headers (credentials) go only to the origin they were meant for.
            same_origin = current.scheme == origin.scheme and (current.host, current.port) == (
                origin.host,
                origin.port,
            )
            hop_headers = headers if same_origin else None
            async with self._http().get(
                current, allow_redirects=False, headers=hop_headers
            ) as resp:
                if resp.status in _REDIRECTS and not follow_redirects:
                    raise FetchError(f"the server redirected it elsewhere ({resp.status})")
                if resp.status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise FetchError(f"the server answered {resp.status} without a Location")
                    current = current.join(URL(location))
                    continue
                if resp.status != 200:
                    raise FetchError(f"the server answered {resp.status}")
                if resp.headers.get("Content-Encoding", "identity").lower() not in (
                    "identity",
                    "",
                ):
                    raise FetchError("the server sent it compressed")
                if resp.content_length is not None and resp.content_length > cap:
                    raise FetchError(f"larger than {_size(cap)}", too_large=True)
                yield resp
                return
        raise FetchError(f"more than {self.max_redirects} redirects")


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"
