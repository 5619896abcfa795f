"""Edge cases of the personal-login pieces beside their end-to-end tests: emoji keys both
ways, the cdn allow-list, nonces, start-chat identifiers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridgekit.contract.capabilities import SendRefused
from bridgekit.contract.events import PortalKey
from bridges.discord import config as cfg
from bridges.discord.personal import MAX_NONCES, Personal
from bridges.discord.reactions import Reactions, emoji_name, unicode_key
from bridges.discord.start_chat import DiscordStartChat

pytestmark = pytest.mark.engine_independent


def test_unicode_keys_and_emoji_names():
    for key in ("👍", "❤️", "👩🏽‍💻", "🇫🇷"):
        assert unicode_key(key)
    for key in ("", "lol", ":smile:", "+1", "👍 👍", "mxc://x/y", "é" * 40):
        assert not unicode_key(key)
    assert emoji_name("party_parrot") == "party_parrot"
    assert emoji_name("<script>") == "script"
    assert emoji_name("../../x") == "x"
    assert emoji_name(None) == "emoji"
    assert len(emoji_name("a" * 100)) == 32


def test_matrix_reaction_keys_for_discord():
    reactions = Reactions(SimpleNamespace(config={}))
    assert reactions.discord_emoji("👍", None, None) == "👍"
    assert reactions.discord_emoji("mxc://h/m", "123", "blob") == "blob:123"
    assert reactions.discord_emoji("mxc://h/m", "123", None) == "blob:123"  # learned
    assert reactions.discord_emoji("mxc://h/m", "456", "bad name!") == "badname:456"
    for key in ("mxc://h/other", "lol", ""):
        with pytest.raises(SendRefused):
            reactions.discord_emoji(key, None, None)
    with pytest.raises(SendRefused):
        reactions.discord_emoji("mxc://h/m", "12a", "x")  # not a snowflake


def test_custom_emoji_url_only_from_allowed_hosts():
    hosts = {"cdn_url": "https://cdn.example", "media_hosts": ["cdn.example"]}
    reactions = Reactions(SimpleNamespace(config=hosts))
    emoji = SimpleNamespace(id=99, name="wave", animated=True)
    assert reactions.emoji_fields(emoji) == {
        "key": ":wave:",
        "emoji_id": "99",
        "emoji_url": "https://cdn.example/emojis/99.gif",
        "emoji_name": "wave",
    }
    elsewhere = Reactions(SimpleNamespace(config={**hosts, "media_hosts": ["other.example"]}))
    assert elsewhere.emoji_fields(emoji) == {"key": ":wave:"}
    assert reactions.emoji_fields(SimpleNamespace(id=None, name="👍", animated=False)) == {
        "key": "👍"
    }


def test_cdn_config():
    assert cfg.cdn_url({}) == "https://cdn.discordapp.com"
    assert cfg.media_allowed({}, "https://cdn.discordapp.com/emojis/1.png")
    assert not cfg.media_allowed({}, "https://evil.example/emojis/1.png")
    assert not cfg.media_allowed({}, "file:///etc/passwd")
    assert ("cdn_url", "must be a http/https URL") in cfg.validate({"cdn_url": "ftp://x"})
    assert cfg.validate({"cdn_url": "http://127.0.0.1:1"}) == []


def test_nonces_name_their_portal_and_are_bounded():
    personal = Personal(SimpleNamespace(clients={}))
    guild, dm = PortalKey("1"), PortalKey("2", "login-a")
    nonce = personal.expect(guild)
    assert len(nonce) <= 25 and nonce.isdigit()
    assert personal.is_echo(nonce, guild) and personal.is_echo(int(nonce), guild)
    assert not personal.is_echo(nonce, dm) and not personal.is_echo(None, guild)
    for _ in range(MAX_NONCES):
        personal.expect(dm)
    assert not personal.is_echo(nonce, guild)  # forgotten, the newest kept


def test_start_chat_identifiers():
    class Resolver(DiscordStartChat):
        def ghost_remote_id(self, localpart):
            return (
                localpart.removeprefix("_discord_") if localpart.startswith("_discord_") else None
            )

    r = Resolver()
    assert r._user_id("123") == "123"
    assert r._user_id("<@123>") == r._user_id("<@!123>") == "123"
    assert r._user_id("@_discord_123:example.org") == "123"
    for bad in ("bob", "@alice:example.org", "@_discord_abc:example.org", "1" * 21, "<@x>"):
        with pytest.raises(ValueError):
            r._user_id(bad)
