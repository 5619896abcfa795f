"""Custom emoji (images a network's users made, as Discord and Slack have) in reactions.

Matrix has no custom emoji of its own: a reaction's key is then the image's ``mxc://`` URI and
``com.beeper.reaction.shortcode`` its ``:name:`` (MSC4027, what clients that show such
reactions read). Each emoji a network reports (by id, with an image URL) is uploaded once: its
image goes through the guarded fetcher and the hash-keyed avatar upload (the same bytes are
never uploaded twice), and the mapping both ways, ``network + emoji id <-> mxc``, is kept in
the key-value table (a cache in front), so a reaction removed later, or a Matrix user reacting
with the same image, finds the emoji again after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..database.records import LRU
from .relay import clean_name

if TYPE_CHECKING:
    from ..contract.events import RemoteReaction, RemoteReactionRemove
    from ..database.store import Store

log = logging.getLogger("bridgekit.portal.portals")

SHORTCODE_FIELD = "com.beeper.reaction.shortcode"
MAX_ID = 255
#: Seconds an image that could not be had is not asked for again: a link that hangs would
#: otherwise hold its portal's queue for the fetcher's whole timeout on every reaction.
RETRY_AFTER = 600.0


@dataclass(frozen=True)
class CustomEmoji:
    network: str
    id: str
    mxc: str
    name: str = ""  # without colons; "" when the network gave none

    @property
    def shortcode(self) -> str:
        return f":{self.name}:" if self.name else ""


def _name(raw: str | None) -> str:
    """A shortcode name cleaned of what could break a ``:name:`` (colons, spaces, controls)."""
    return clean_name(raw or "").replace(":", "").replace(" ", "_")


class CustomEmojis:
    """Custom emoji of every network, by id and by ``mxc://`` URI."""

    def __init__(self, store: Store, to_mxc: Callable[[str], Awaitable[str]]) -> None:
        self._store = store
        self._to_mxc = to_mxc  # an image URL to an mxc, uploaded once per distinct image
        self._cache = LRU(10_000)
        self._locks = [asyncio.Lock() for _ in range(16)]
        self._failed = LRU(1_000)  # (network, emoji id) -> when its image last failed

    async def by_id(self, network: str, emoji_id: str) -> CustomEmoji | None:
        key = ("id", network, emoji_id)
        if key in self._cache:
            return self._cache[key]
        raw = await self._store.get_kv(f"emoji:{network}:{emoji_id}")
        if raw is None:
            return None
        data = json.loads(raw)
        emoji = CustomEmoji(network, emoji_id, data["mxc"], data.get("name", ""))
        self._cache.put(key, emoji)
        return emoji

    async def by_mxc(self, network: str, mxc: str) -> CustomEmoji | None:
        """The emoji of ``network`` whose image is ``mxc`` (a Matrix reaction's key)."""
        if not mxc.startswith("mxc://"):
            return None
        key = ("mxc", network, mxc)
        if key in self._cache:
            return self._cache[key]
        emoji_id = await self._store.get_kv(f"emoji-mxc:{network}:{mxc}")
        emoji = await self.by_id(network, emoji_id) if emoji_id is not None else None
        if emoji is not None:
            self._cache.put(key, emoji)
        return emoji

    async def ensure(
        self, network: str, emoji_id: str, url: str | None, name: str | None
    ) -> CustomEmoji | None:
        """The emoji, its image uploaded if this is its first sighting; None when it is not
        known and its image cannot be had (no URL, refused by the fetcher, unreachable)."""
        if not emoji_id or len(emoji_id) > MAX_ID:
            return None
        async with self._locks[hash((network, emoji_id)) % len(self._locks)]:
            known = await self.by_id(network, emoji_id)
            if known is not None or not url:
                return known
            failed = self._failed.get((network, emoji_id))
            if failed is not None and time.monotonic() - failed < RETRY_AFTER:
                return None
            try:
                mxc = await self._to_mxc(url)
            except Exception as e:
                log.info("Custom emoji %s of %s not uploaded: %s", emoji_id, network, e)
                self._failed.put((network, emoji_id), time.monotonic())
                return None
            emoji = CustomEmoji(network, emoji_id, mxc, _name(name))
            value = json.dumps({"mxc": mxc, "name": emoji.name})
            await asyncio.gather(  # durable both ways, in one commit
                self._store.set_kv_soon(f"emoji:{network}:{emoji_id}", value),
                self._store.set_kv_soon(f"emoji-mxc:{network}:{mxc}", emoji_id),
            )
            self._cache.put(("id", network, emoji_id), emoji)
            self._cache.put(("mxc", network, mxc), emoji)
            return emoji

    async def reaction_key(self, network: str, evt: RemoteReaction) -> tuple[str, dict[str, str]]:
        """The Matrix key of a remote reaction, and what its content adds: for a custom emoji
        its mxc and shortcode; else (or when its image cannot be had) ``key``, or its
        ``:name:`` when the connector gave no text key."""
        if not evt.emoji_id:
            return evt.key, {}
        emoji = await self.ensure(network, evt.emoji_id, evt.emoji_url, evt.emoji_name)
        if emoji is None:
            return evt.key or f":{_name(evt.emoji_name) or evt.emoji_id}:", {}
        return emoji.mxc, {SHORTCODE_FIELD: emoji.shortcode} if emoji.name else {}

    async def removal_key(self, network: str, evt: RemoteReactionRemove) -> str:
        """The Matrix key of the reaction a remote removal takes back (see reaction_key)."""
        if not evt.emoji_id:
            return evt.key
        emoji = await self.by_id(network, evt.emoji_id)
        return emoji.mxc if emoji is not None else evt.key
