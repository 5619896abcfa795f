"""Edge cases of custom emoji (bridgekit.portal.custom_emoji); end to end:
test_e2e_custom_emoji.py."""

from __future__ import annotations

import asyncio
from typing import Any

from bridgekit.contract.events import PortalKey, RemoteReaction, RemoteReactionRemove
from bridgekit.portal.custom_emoji import SHORTCODE_FIELD, CustomEmojis


class _KV:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get_kv(self, key: str) -> str | None:
        return self.data.get(key)

    def set_kv_soon(self, key: str, value: str | None) -> asyncio.Future[None]:
        assert value is not None
        self.data[key] = value
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _reaction(emoji_id: str | None, url: str | None, name: str | None, key: str = "") -> Any:
    return RemoteReaction(
        PortalKey("c"), target_id="m", key=key, emoji_id=emoji_id, emoji_url=url, emoji_name=name
    )


async def test_each_emoji_is_uploaded_once_per_network_and_found_both_ways():
    uploads: list[str] = []

    async def to_mxc(url: str) -> str:
        uploads.append(url)
        if "bad" in url:
            raise ValueError("refused")
        return f"mxc://hs/{len(uploads)}"

    kv = _KV()
    emojis = CustomEmojis(kv, to_mxc)  # type: ignore[arg-type]
    assert await emojis.reaction_key("a", _reaction("1", "https://e/p.png", "pa:rty")) == (
        "mxc://hs/1",
        {SHORTCODE_FIELD: ":party:"},
    )
    assert (await emojis.reaction_key("a", _reaction("1", "https://e/p.png", "x")))[0] == (
        "mxc://hs/1"
    )
    assert uploads == ["https://e/p.png"]
    # Another network's emoji with the same id is its own.
    assert (await emojis.reaction_key("b", _reaction("1", "https://e/q.png", "q")))[0] == (
        "mxc://hs/2"
    )
    # Found again after a restart (a new cache over the same table).
    again = CustomEmojis(kv, to_mxc)  # type: ignore[arg-type]
    found = await again.by_mxc("a", "mxc://hs/1")
    assert found is not None and (found.id, found.name) == ("1", "party")
    assert await again.by_mxc("b", "mxc://hs/1") is None
    assert await again.by_mxc("a", "👍") is None
    remove = RemoteReactionRemove(PortalKey("c"), target_id="m", emoji_id="1")
    assert await again.removal_key("a", remove) == "mxc://hs/1"
    # An image that cannot be had, or no image and an unknown id: the text key.
    assert await emojis.reaction_key("a", _reaction("2", "https://bad/x", "sad")) == (":sad:", {})
    # ... and is not asked for again at once (a hanging link would hold the queue each time).
    before = len(uploads)
    assert (await emojis.reaction_key("a", _reaction("2", "https://bad/x", "sad")))[0] == ":sad:"
    assert len(uploads) == before
    assert await emojis.reaction_key("a", _reaction("3", None, None, key="😀")) == ("😀", {})
    assert await emojis.reaction_key("a", _reaction(None, None, None, key="👍")) == ("👍", {})
    assert await emojis.reaction_key("a", _reaction("x" * 300, "https://e/p.png", "l")) == (
        ":l:",
        {},
    )
