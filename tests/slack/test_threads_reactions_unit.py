"""Edge cases of threads, edits, reactions and echoes that the end-to-end tests do not reach:
malformed Slack payloads, alias loops, foreign emoji, expired echo notes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bridgekit.contract.connector import SendRefused, TypingHandler
from bridgekit.contract.events import MatrixMessage, MessageContent, PortalKey, RemoteMessageID
from bridges.slack import echoes as echoes_mod
from bridges.slack.client import SlackClient
from bridges.slack.echoes import Echoes
from bridges.slack.reactions import CustomEmojiTable, Reactions
from bridges.slack.threads import post_args, thread_root

pytestmark = pytest.mark.engine_independent


def test_thread_root_only_for_replies():
    assert thread_root({"ts": "1.1", "thread_ts": "1.1"}) is None  # a root names itself
    assert thread_root({"ts": "1.2"}) is None
    assert thread_root({"ts": "1.2", "thread_ts": 5}) is None  # malformed
    assert thread_root({"ts": "1.2", "thread_ts": "1.1"}) == "1.1"


def _msg(**content: Any) -> MatrixMessage:
    msg = MatrixMessage(PortalKey("t1-c1"), "!r", "$e", "@u:x", 0.0)
    msg.content = MessageContent("hi", **content)
    return msg


def test_post_args():
    assert post_args(_msg()) == {}
    assert post_args(_msg(thread_root=RemoteMessageID("1.1"))) == {"thread_ts": "1.1"}
    # a reply inside the thread stays in it, not broadcast
    inside = _msg(thread_root=RemoteMessageID("1.1"), reply_to=RemoteMessageID("1.5"))
    assert post_args(inside) == {"thread_ts": "1.1"}
    plain = _msg(reply_to=RemoteMessageID("1.5"))
    assert post_args(plain) == {"thread_ts": "1.5", "reply_broadcast": True}
    plain.reply_to_thread = RemoteMessageID("1.1")
    assert post_args(plain) == {"thread_ts": "1.1", "reply_broadcast": True}
    # a message the runtime knows by another id than a ts (never sent to Slack): no thread
    assert post_args(_msg(thread_root=RemoteMessageID("mx:$ev"))) == {}
    assert post_args(_msg(reply_to=RemoteMessageID("mx:$ev"))) == {}


def test_custom_emoji_aliases():
    table = CustomEmojiTable()
    table.names = {
        "parrot": "https://emoji.example/parrot.png",
        "pp": "alias:parrot",
        "yes": "alias:+1",
        "loop1": "alias:loop2",
        "loop2": "alias:loop1",
    }
    assert table.resolve("pp") == ("parrot", "https://emoji.example/parrot.png")
    assert table.resolve("yes") == ("+1", None)
    assert table.resolve("unknown") == ("unknown", None)
    assert table.resolve("loop1")[1] is None  # ends, with no image


class _Client:
    team_id = "T1"

    class meta:  # noqa: N801 - stands in for SlackLoginMeta
        user_id = "UBOT"


def test_reaction_names_to_slack():
    reactions = Reactions.__new__(Reactions)
    client: Any = _Client()
    assert reactions.slack_name(client, "👍", None) == "+1"
    assert reactions.slack_name(client, "👍🏽", None) == "+1::skin-tone-4"
    assert reactions.slack_name(client, ":partyparrot:", None) == "partyparrot"
    assert reactions.slack_name(client, "mxc://x/y", "t1-partyparrot") == "partyparrot"
    with pytest.raises(SendRefused):
        reactions.slack_name(client, "mxc://x/y", "t2-partyparrot")  # another workspace's
    with pytest.raises(SendRefused):
        reactions.slack_name(client, "lol", None)  # text, not an emoji


def test_malformed_reaction_items_are_skipped():
    reactions = Reactions.__new__(Reactions)
    assert reactions._item({"item": "x"}) is None
    assert reactions._item({"item": {"type": "file", "file": "F1"}, "user": "U1"}) is None
    assert reactions._item({"item": {"type": "message", "channel": "C1"}, "user": "U1"}) is None
    ok = {"item": {"type": "message", "channel": "C1", "ts": "1.1"}, "user": "U1", "reaction": "x"}
    assert reactions._item(ok) == ("C1", "1.1", "U1", "x")


def test_echo_notes_are_used_once_and_expire(monkeypatch):
    echoes = Echoes()
    echoes.expect(("edit", "C1", "1.1"))
    assert echoes.is_echo(("edit", "C1", "1.1"))
    assert not echoes.is_echo(("edit", "C1", "1.1"))  # the user's own edit on Slack later
    echoes.expect(("delete", "C1", "1.2"))
    now = time.monotonic()
    monkeypatch.setattr(echoes_mod.time, "monotonic", lambda: now + echoes_mod.TTL + 1)
    assert not echoes.is_echo(("delete", "C1", "1.2"))
    echoes.expect(("x",))
    echoes.forget(("x",))
    assert not echoes.is_echo(("x",))


def test_echo_notes_are_bounded(monkeypatch):
    monkeypatch.setattr(echoes_mod, "MAX_NOTES", 3)
    echoes = Echoes()
    for i in range(5):
        echoes.expect(i)
    assert not echoes.is_echo(0) and echoes.is_echo(4) and echoes.is_echo(2)


def test_typing_is_not_claimed():
    # Slack has no typing outside RTM: the client must not pretend to handle it.
    assert not issubclass(SlackClient, TypingHandler)
