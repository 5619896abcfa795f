"""The fake Slack (tests/harness/slack_fake/) driven by the real slack-sdk: the Web API with
pagination, errors and rate limits, files upload v2 and downloads, Socket Mode with acks,
refreshes, dropped sockets and redelivery, and signed Events API pushes checked by the SDK's
``SignatureVerifier``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bridgekit.testing.ports import free_port
from tests.harness.slack_fake import FakeSlack

pytestmark = pytest.mark.engine_independent


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack-sdk reads HTTP(S)_PROXY and ignores NO_PROXY
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@dataclass
class World:
    fake: FakeSlack
    team: Any
    alice: Any
    bob: Any
    general: Any
    bot_token: str
    alice_token: str
    app_token: str

    def client(self, token: str | None = None, **kw: Any) -> AsyncWebClient:
        return AsyncWebClient(token=token or self.bot_token, base_url=self.fake.api_url, **kw)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeSlack() as fake:
        team = fake.add_team("Acme", "acme")
        alice = fake.add_user(team.id, "alice", real_name="Alice Liddell", display_name="ali")
        bob = fake.add_user(team.id, "bob", real_name="Bob Builder")
        general = fake.add_conversation(team.id, "general", members=[alice.id, bob.id])
        yield World(
            fake,
            team,
            alice,
            bob,
            general,
            fake.bot_token(team.id),
            fake.user_token(alice.id),
            fake.app_token(),
        )


# --- Web API -------------------------------------------------------------------------------


async def test_auth_test_and_token_errors(world: World) -> None:
    bot = await world.client().auth_test()
    assert bot["team_id"] == world.team.id and bot["user_id"] == world.team.bot_user_id
    assert bot["bot_id"] == world.team.bot_id and bot["url"] == "https://acme.slack.com/"
    user = await world.client(world.alice_token).auth_test()
    assert user["user_id"] == world.alice.id and "bot_id" not in user.data

    with pytest.raises(SlackApiError) as e:
        await world.client("xoxb-nope").auth_test()
    assert e.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as e:
        await AsyncWebClient(base_url=world.fake.api_url).auth_test()
    assert e.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as e:
        await world.client(world.app_token).auth_test()
    assert e.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as e:
        await world.client().apps_connections_open(app_token=world.bot_token)
    assert e.value.response["error"] == "not_allowed_token_type"

    rec = await world.fake.wait_for(lambda r: r.method == "auth.test" and r.token == "xoxb-nope")
    assert rec.status == 200 and rec.response == {"ok": False, "error": "invalid_auth"}


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive"])
async def test_revoked_token_raises_slack_api_error(world: World, error: str) -> None:
    client = world.client()
    await client.auth_test()
    world.fake.revoke(world.bot_token, error)
    for call in (client.auth_test(), client.chat_postMessage(channel=world.general.id, text="x")):
        with pytest.raises(SlackApiError) as e:
            await call
        assert e.value.response["error"] == error
    assert world.fake.messages[world.general.id] == []


async def test_revoked_app_token_refuses_socket_urls(world: World) -> None:
    client = world.client()
    assert (await client.apps_connections_open(app_token=world.app_token))["url"]
    world.fake.revoke(world.app_token, "token_revoked")
    with pytest.raises(SlackApiError) as e:
        await client.apps_connections_open(app_token=world.app_token)
    assert e.value.response["error"] == "token_revoked"


async def test_user_token_posts_as_the_user(world: World) -> None:
    fake = world.fake
    secret = fake.add_conversation(
        world.team.id, "secret", kind="private", members=[world.alice.id]
    )
    client = world.client(world.alice_token)
    r = await client.chat_postMessage(channel=secret.id, text="from alice herself")
    assert r["message"]["user"] == world.alice.id and "bot_id" not in r["message"]
    event = fake.envelopes[-1].payload["event"]
    assert event["user"] == world.alice.id and event["channel_type"] == "group"
    history = await client.conversations_history(channel=secret.id)
    assert [m["text"] for m in history["messages"]] == ["from alice herself"]
    with pytest.raises(SlackApiError) as e:
        await world.client(fake.user_token(world.bob.id)).conversations_history(channel=secret.id)
    assert e.value.response["error"] == "channel_not_found"


async def test_users_info_and_list_paginated(world: World) -> None:
    fake = world.fake
    for i in range(5):
        fake.add_user(world.team.id, f"user{i}")
    other = fake.add_team("Other")
    fake.add_user(other.id, "stranger")
    client = world.client()

    info = await client.users_info(user=world.alice.id)
    profile = info["user"]["profile"]
    assert profile["real_name"] == "Alice Liddell" and profile["display_name"] == "ali"
    async with aiohttp.ClientSession() as http, http.get(profile["image_72"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"

    with pytest.raises(SlackApiError) as e:
        await client.users_info(user="U_NOPE")
    assert e.value.response["error"] == "user_not_found"

    pages = [page.data async for page in await client.users_list(limit=3)]
    names = [m["name"] for page in pages for m in page["members"]]
    assert len(pages) == 3  # bot, alice, bob, user0..user4: 8 users, 3 a page
    assert names == ["bridgebot", "alice", "bob"] + [f"user{i}" for i in range(5)]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""
    cursors = [r.params.get("cursor") for r in fake.calls("users.list")]
    assert cursors[0] is None and all(cursors[1:])

    with pytest.raises(SlackApiError) as e:
        await client.users_list(cursor="garbage!")
    assert e.value.response["error"] == "invalid_cursor"


async def test_conversations_list_info_members(world: World) -> None:
    fake, team = world.fake, world.team
    secret = fake.add_conversation(team.id, "secret", kind="private", members=[world.alice.id])
    hidden = fake.add_conversation(team.id, "hidden", kind="private", with_bot=False)
    dm = fake.add_conversation(team.id, kind="im", members=[world.alice.id])
    for i in range(4):
        fake.add_conversation(team.id, f"chan{i}", with_bot=False)
    client = world.client()

    public = [c async for p in await client.conversations_list(limit=2) for c in p["channels"]]
    assert {c["name"] for c in public} == {"general"} | {f"chan{i}" for i in range(4)}
    by_id = {c["id"]: c for c in public}
    assert by_id[world.general.id]["is_member"] is True
    assert by_id[world.general.id]["is_channel"] is True

    kinds = "public_channel,private_channel,im,mpim"
    every = [c async for p in await client.conversations_list(types=kinds) for c in p["channels"]]
    ids = {c["id"] for c in every}
    assert secret.id in ids and dm.id in ids and hidden.id not in ids
    dm_json = next(c for c in every if c["id"] == dm.id)
    assert dm_json["is_im"] is True and dm_json["user"] == world.alice.id

    info = await client.conversations_info(channel=secret.id)
    assert info["channel"]["is_private"] is True and info["channel"]["is_group"] is True
    with pytest.raises(SlackApiError) as e:
        await client.conversations_info(channel=hidden.id)
    assert e.value.response["error"] == "channel_not_found"

    members = [
        m
        async for p in await client.conversations_members(channel=world.general.id, limit=2)
        for m in p["members"]
    ]
    assert members == [world.alice.id, world.bob.id, team.bot_user_id]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_post_thread_broadcast_history_and_replies(world: World) -> None:
    client, ch = world.client(), world.general.id
    root = world.fake.post_user_message(ch, world.alice.id, "root")
    posted = []
    for i in range(5):
        r = await client.chat_postMessage(channel=ch, text=f"m{i}")
        posted.append(r["ts"])
        assert r["channel"] == ch and r["message"]["text"] == f"m{i}"
        assert r["message"]["bot_id"] == world.team.bot_id
    reply = await client.chat_postMessage(channel=ch, text="in thread", thread_ts=root.ts)
    bcast = await client.chat_postMessage(
        channel=ch, text="also to channel", thread_ts=root.ts, reply_broadcast=True
    )
    assert bcast["message"]["subtype"] == "thread_broadcast"
    relay = await client.chat_postMessage(
        channel=ch, text="hi", username="Matrix Mallory", icon_url="https://example.org/m.png"
    )
    assert relay["message"]["username"] == "Matrix Mallory"
    assert relay["message"]["subtype"] == "bot_message" and "user" not in relay["message"]
    assert relay["message"]["icons"] == {"image_48": "https://example.org/m.png"}

    pages = [p.data async for p in await client.conversations_history(channel=ch, limit=3)]
    texts = [m["text"] for p in pages for m in p["messages"]]
    # newest first; the plain thread reply is not in the channel's history, the broadcast is
    assert texts == ["hi", "also to channel", "m4", "m3", "m2", "m1", "m0", "root"]
    assert [p["has_more"] for p in pages] == [True, True, False]
    parent = pages[-1]["messages"][-1]
    assert parent["thread_ts"] == root.ts and parent["reply_count"] == 2
    assert parent["latest_reply"] == bcast["ts"]

    window = await client.conversations_history(
        channel=ch, oldest=posted[1], latest=posted[3], inclusive=True
    )
    assert [m["text"] for m in window["messages"]] == ["m3", "m2", "m1"]
    window = await client.conversations_history(channel=ch, oldest=posted[1], latest=posted[3])
    assert [m["text"] for m in window["messages"]] == ["m2"]

    replies = await client.conversations_replies(channel=ch, ts=root.ts)
    assert [m["text"] for m in replies["messages"]] == ["root", "in thread", "also to channel"]
    assert replies["messages"][1]["ts"] == reply["ts"]
    assert replies["messages"][1]["parent_user_id"] == world.alice.id
    paged = [
        m
        async for p in await client.conversations_replies(channel=ch, ts=root.ts, limit=1)
        for m in p["messages"]
    ]
    assert [m["text"] for m in paged] == ["root", "in thread", "also to channel"]

    for bad in ({"channel": "C_NOPE", "text": "x"}, {"channel": ch}):
        with pytest.raises(SlackApiError) as e:
            await client.chat_postMessage(**bad)
        assert e.value.response["error"] in ("channel_not_found", "no_text")
    outside = world.fake.add_conversation(world.team.id, "outside", with_bot=False)
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=outside.id, text="x")
    assert e.value.response["error"] == "not_in_channel"


async def test_update_delete_and_reactions(world: World) -> None:
    client, ch = world.client(), world.general.id
    mine = await client.chat_postMessage(channel=ch, text="typo")
    theirs = world.fake.post_user_message(ch, world.alice.id, "hers")

    upd = await client.chat_update(channel=ch, ts=mine["ts"], text="fixed")
    assert upd["ts"] == mine["ts"] and upd["text"] == "fixed"
    with pytest.raises(SlackApiError) as e:
        await client.chat_update(channel=ch, ts=theirs.ts, text="no")
    assert e.value.response["error"] == "cant_update_message"

    await client.reactions_add(channel=ch, timestamp=theirs.ts, name="thumbsup")
    with pytest.raises(SlackApiError) as e:
        await client.reactions_add(channel=ch, timestamp=theirs.ts, name="thumbsup")
    assert e.value.response["error"] == "already_reacted"
    history = await client.conversations_history(channel=ch)
    by_ts = {m["ts"]: m for m in history["messages"]}
    assert by_ts[mine["ts"]]["text"] == "fixed" and "ts" in by_ts[mine["ts"]]["edited"]
    assert by_ts[theirs.ts]["reactions"] == [
        {"name": "thumbsup", "users": [world.team.bot_user_id], "count": 1}
    ]
    await client.reactions_remove(channel=ch, timestamp=theirs.ts, name="thumbsup")
    with pytest.raises(SlackApiError) as e:
        await client.reactions_remove(channel=ch, timestamp=theirs.ts, name="thumbsup")
    assert e.value.response["error"] == "no_reaction"

    await client.chat_delete(channel=ch, ts=mine["ts"])
    with pytest.raises(SlackApiError) as e:
        await client.chat_delete(channel=ch, ts=mine["ts"])
    assert e.value.response["error"] == "message_not_found"
    history = await client.conversations_history(channel=ch)
    assert [m["text"] for m in history["messages"]] == ["hers"]

    kinds = [
        (e.payload["event"]["type"], e.payload["event"].get("subtype"))
        for e in world.fake.envelopes
    ]
    assert kinds == [
        ("message", None),
        ("message", None),
        ("message", "message_changed"),
        ("reaction_added", None),
        ("reaction_removed", None),
        ("message", "message_deleted"),
    ]
    changed = world.fake.envelopes[2].payload["event"]
    assert changed["message"]["text"] == "fixed" and changed["previous_message"]["text"] == "typo"
    deleted = world.fake.envelopes[5].payload["event"]
    assert deleted["deleted_ts"] == mine["ts"]


async def test_conversations_open_and_emoji(world: World) -> None:
    client = world.client()
    first = await client.conversations_open(users=world.alice.id)
    again = await client.conversations_open(users=world.alice.id, return_im=True)
    assert first["channel"]["id"] == again["channel"]["id"] and again["already_open"] is True
    assert again["channel"]["is_im"] is True and again["channel"]["user"] == world.alice.id
    group = await client.conversations_open(users=f"{world.alice.id},{world.bob.id}")
    info = await client.conversations_info(channel=group["channel"]["id"])
    assert info["channel"]["is_mpim"] is True

    url = world.fake.add_emoji(world.team.id, "partyparrot", b"\x89PNG-parrot")
    world.fake.add_emoji(world.team.id, "parrot", alias_for="partyparrot")
    emoji = (await client.emoji_list())["emoji"]
    assert emoji == {"partyparrot": url, "parrot": "alias:partyparrot"}
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert await resp.read() == b"\x89PNG-parrot"


async def test_rate_limit_honoured_by_retry_handler(world: World) -> None:
    fake, ch = world.fake, world.general.id
    fake.rate_limit("chat.postMessage", retry_after=1)
    with pytest.raises(SlackApiError) as e:
        await world.client().chat_postMessage(channel=ch, text="plain client")
    assert e.value.response.status_code == 429
    assert e.value.response.headers["Retry-After"] == "1"
    assert e.value.response["error"] == "ratelimited"

    fake.rate_limit("chat.postMessage", retry_after=1)
    client = world.client()
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    started = time.monotonic()
    r = await client.chat_postMessage(channel=ch, text="retried")
    assert r["ok"] is True and time.monotonic() - started >= 1.0
    calls = [c for c in fake.calls("chat.postMessage") if c.params.get("text") == "retried"]
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert [m.text for m in fake.messages[ch]] == ["retried"]


async def test_injected_error_and_slow_reply(world: World) -> None:
    fake = world.fake
    fake.fail("users.info", "ratelimited_not", times=2)
    client = world.client()
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.users_info(user=world.alice.id)
    assert (await client.users_info(user=world.alice.id))["user"]["id"] == world.alice.id

    fake.delay("auth.test", 0.6)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.6
    fake.delay("auth.test", 1.5)
    with pytest.raises(asyncio.TimeoutError):
        await world.client(timeout=0.5).auth_test()


async def test_dropped_connection_retried_by_default_handler(world: World) -> None:
    fake, ch = world.fake, world.general.id
    fake.disconnect("chat.postMessage")
    # AsyncWebClient's default retry handler retries connection errors once
    r = await world.client().chat_postMessage(channel=ch, text="second try")
    calls = fake.calls("chat.postMessage")
    assert [c.status for c in calls] == [0, 200] and r["ts"] == fake.messages[ch][0].ts
    assert [m.text for m in fake.messages[ch]] == ["second try"]

    fake.disconnect("chat.postMessage", times=2)
    with pytest.raises(aiohttp.ClientError):
        await world.client().chat_postMessage(channel=ch, text="gives up")
    assert [m.text for m in fake.messages[ch]] == ["second try"]


# --- files ---------------------------------------------------------------------------------


async def test_files_upload_v2_and_private_download(world: World) -> None:
    fake, ch = world.fake, world.general.id
    client = world.client()
    root = fake.post_user_message(ch, world.alice.id, "thread root")
    done = await client.files_upload_v2(
        channel=ch,
        initial_comment="two files",
        thread_ts=root.ts,
        file_uploads=[
            {"content": b"\x89PNG-one", "filename": "one.png", "title": "One"},
            {"content": "plain text", "filename": "two.txt"},
        ],
    )
    assert [f["title"] for f in done["files"]] == ["One", "two.txt"]
    assert [r.kind for r in fake.requests if r.kind == "upload"] == ["upload", "upload"]

    replies = await client.conversations_replies(channel=ch, ts=root.ts)
    shared = replies["messages"][-1]
    assert shared["subtype"] == "file_share" and shared["text"] == "two files"
    files = shared["files"]
    assert [f["mimetype"] for f in files] == ["image/png", "text/plain"]
    assert files[0]["size"] == len(b"\x89PNG-one")

    url = files[0]["url_private"]
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {world.bot_token}"}
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 200 and await resp.read() == b"\x89PNG-one"
        async with http.get(files[1]["url_private_download"], headers=headers) as resp:
            assert await resp.text() == "plain text"
        async with http.get(url) as resp:  # no token: Slack's sign-in page, status 200
            assert resp.status == 200 and resp.content_type == "text/html"
    info = await client.files_info(file=files[0]["id"])
    assert info["file"]["name"] == "one.png"

    single = await client.files_upload_v2(channel=ch, content=b"abc", filename="a.bin")
    assert single["file"]["id"] == single["files"][0]["id"]
    with pytest.raises(SlackApiError) as e:
        await client.files_completeUploadExternal(files=[{"id": "F_NOPE"}], channel_id=ch)
    assert e.value.response["error"] == "file_not_found"


async def test_user_message_with_files_event(world: World) -> None:
    fake, ch = world.fake, world.general.id
    f = fake.add_file(world.team.id, world.alice.id, "cat.jpg", b"JPEGDATA")
    msg = fake.post_user_message(ch, world.alice.id, "look", files=[f])
    event = fake.envelopes[-1].payload["event"]
    assert event["subtype"] == "file_share" and event["ts"] == msg.ts
    assert event["files"][0]["mimetype"] == "image/jpeg"
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {world.bot_token}"}
        async with http.get(event["files"][0]["url_private"], headers=headers) as resp:
            assert await resp.read() == b"JPEGDATA"


# --- Socket Mode ---------------------------------------------------------------------------


class Listener:
    """Collects Socket Mode requests; acks them unless told not to."""

    def __init__(self, ack: bool = True) -> None:
        self.ack = ack
        self.requests: list[SocketModeRequest] = []
        self.arrived = asyncio.Event()

    async def __call__(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        self.requests.append(req)
        if self.ack:
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        self.arrived.set()

    async def wait(self, n: int, timeout: float = 5.0) -> list[SocketModeRequest]:
        async with asyncio.timeout(timeout):
            while len(self.requests) < n:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


async def _socket_client(world: World, listener: Listener, **kw: Any) -> SocketModeClient:
    client = SocketModeClient(app_token=world.app_token, web_client=world.client(), **kw)
    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    return client


async def test_socket_mode_event_and_ack(world: World) -> None:
    fake = world.fake
    listener = Listener()
    client = await _socket_client(world, listener)
    try:
        assert (await fake.wait_for(lambda r: r.kind == "socket")).status == 101
        msg = fake.post_user_message(world.general.id, world.alice.id, "hello <@U1>")
        [req] = await listener.wait(1)
        assert req.type == "events_api" and req.retry_attempt == 0 and req.retry_reason == ""
        event = req.payload["event"]
        assert event == {**event, "type": "message", "user": world.alice.id, "ts": msg.ts}
        assert event["channel"] == world.general.id and event["channel_type"] == "channel"
        assert req.payload["team_id"] == world.team.id
        assert req.payload["authorizations"][0]["user_id"] == world.team.bot_user_id
        assert await fake.wait_for_ack(req.envelope_id) is None
        assert fake.envelopes[0].acked
        # the bot's own posts come back as events too (the connector must drop its echoes)
        posted = await world.client().chat_postMessage(channel=world.general.id, text="echo")
        reqs = await listener.wait(2)
        assert reqs[1].payload["event"]["bot_id"] == world.team.bot_id
        assert reqs[1].payload["event"]["ts"] == posted["ts"]
    finally:
        await client.close()


async def test_socket_mode_refresh_and_redelivery(world: World) -> None:
    fake = world.fake
    listener = Listener(ack=False)
    client = await _socket_client(world, listener)
    try:
        await fake.wait_until(lambda: fake.connected_sockets == 1)
        fake.post_user_message(world.general.id, world.alice.id, "unacked")
        [first] = await listener.wait(1)
        assert first.retry_attempt == 0
        listener.ack = True

        assert await fake.request_refresh() == 1
        # the SDK asks for a fresh URL and reconnects; the unacked envelope comes again
        await fake.wait_until(lambda: len(fake.calls("apps.connections.open")) == 2)
        reqs = await listener.wait(2)
        again = reqs[1]
        assert again.envelope_id == first.envelope_id
        assert again.retry_attempt == 1 and again.retry_reason == "timeout"
        await fake.wait_for_ack(first.envelope_id)
        await fake.wait_until(lambda: fake.connected_sockets == 1)

        fake.post_user_message(world.general.id, world.bob.id, "after refresh")
        reqs = await listener.wait(3)
        assert reqs[2].payload["event"]["text"] == "after refresh"
        assert reqs[2].retry_attempt == 0
        await fake.wait_for_ack(reqs[2].envelope_id)
        assert fake.redeliver_unacked() == 0
    finally:
        await client.close()


async def test_socket_mode_resends_after_ack_timeout(world: World) -> None:
    fake = world.fake
    fake.ack_timeout = 1.0
    listener = Listener(ack=False)
    client = await _socket_client(world, listener)
    try:
        await fake.wait_until(lambda: fake.connected_sockets == 1)
        fake.post_user_message(world.general.id, world.alice.id, "slow ack")
        first, second = await listener.wait(2)
        assert first.envelope_id == second.envelope_id
        assert (first.retry_attempt, second.retry_attempt) == (0, 1)
        assert second.retry_reason == "timeout"
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=first.envelope_id))
        await fake.wait_for_ack(first.envelope_id)
        await asyncio.sleep(0.5)
        assert len(listener.requests) == 2

        await fake.request_refresh("warning", close_after=0.2)
        await fake.wait_until(lambda: len(fake.calls("apps.connections.open")) == 2)
    finally:
        await client.close()


async def test_socket_mode_survives_dropped_socket(world: World) -> None:
    fake = world.fake
    listener = Listener()
    client = await _socket_client(world, listener, ping_interval=0.3)
    try:
        await fake.wait_until(lambda: fake.connected_sockets == 1)
        assert await fake.drop_sockets() == 1
        await fake.wait_until(lambda: len(fake.calls("apps.connections.open")) >= 2, timeout=10)
        await fake.wait_until(lambda: fake.connected_sockets == 1, timeout=10)
        fake.post_user_message(world.general.id, world.alice.id, "after drop")
        [req] = await listener.wait(1)
        assert req.payload["event"]["text"] == "after drop"
        await fake.wait_for_ack(req.envelope_id)
    finally:
        await client.close()


async def test_envelopes_wait_for_a_connection(world: World) -> None:
    fake = world.fake
    fake.post_user_message(world.general.id, world.alice.id, "while away")
    listener = Listener()
    client = await _socket_client(world, listener)
    try:
        [req] = await listener.wait(1)
        assert req.payload["event"]["text"] == "while away" and req.retry_attempt == 0
    finally:
        await client.close()


async def test_socket_link_needs_a_fresh_ticket(world: World) -> None:
    opened = await world.client().apps_connections_open(app_token=world.app_token)
    url = opened["url"]
    assert url.startswith(f"ws://127.0.0.1:{world.fake.port}/link/?ticket=")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello"
            assert hello["connection_info"]["app_id"] == world.fake.app_id
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await http.ws_connect(url)  # a ticket is good for one connection
        assert e.value.status == 401


# --- events the test-facing API emits -------------------------------------------------------


async def test_emitted_event_shapes(world: World) -> None:
    fake, ch = world.fake, world.general.id
    root = fake.post_user_message(ch, world.alice.id, "root")
    first_reply = fake.post_user_message(ch, world.bob.id, "reply", thread_ts=root.ts)
    fake.post_user_message(ch, world.bob.id, "loud", thread_ts=root.ts, reply_broadcast=True)
    fake.edit_message(ch, root.ts, "root (edited)")
    fake.add_reaction(ch, root.ts, world.bob.id, "tada")
    fake.remove_reaction(ch, root.ts, world.bob.id, "tada")
    fake.delete_message(ch, root.ts)  # it has replies: it stays, as a tombstone
    fake.delete_message(ch, first_reply.ts)
    fake.update_user(world.alice.id, display_name="Alice L.", avatar=b"new-avatar")
    carol = fake.add_user(world.team.id, "carol")
    fake.join(ch, carol.id, inviter=world.alice.id)
    fake.leave(ch, carol.id)
    fake.rename(ch, "town-square")
    fake.set_topic(ch, world.alice.id, "Weekly sync")
    fake.set_purpose(ch, world.alice.id, "Talk")
    unseen = fake.add_conversation(
        world.team.id, "unseen", members=[world.alice.id], with_bot=False
    )
    fake.post_user_message(unseen.id, world.alice.id, "bot cannot see this")

    events = [e.payload["event"] for e in fake.envelopes]
    kinds = [(e["type"], e.get("subtype")) for e in events]
    assert kinds == [
        ("message", None),
        ("message", None),
        ("message", "thread_broadcast"),
        ("message", "message_changed"),
        ("reaction_added", None),
        ("reaction_removed", None),
        ("message", "message_changed"),
        ("message", "message_deleted"),
        ("user_change", None),
        ("member_joined_channel", None),
        ("message", "channel_join"),
        ("member_left_channel", None),
        ("channel_rename", None),
        ("message", "channel_topic"),
        ("message", "channel_purpose"),
    ]
    reply, loud, changed, added = events[1], events[2], events[3], events[4]
    assert reply["thread_ts"] == root.ts and reply["parent_user_id"] == world.alice.id
    assert loud["thread_ts"] == root.ts and loud["root"]["ts"] == root.ts
    assert changed["message"]["ts"] == root.ts and changed["message"]["text"] == "root (edited)"
    assert changed["previous_message"]["text"] == "root"
    assert changed["message"]["edited"]["ts"] == changed["ts"]
    assert added["item"] == {"type": "message", "channel": ch, "ts": root.ts}
    assert added["item_user"] == world.alice.id and added["reaction"] == "tada"
    tombstone = events[6]["message"]
    assert tombstone["ts"] == root.ts and tombstone["subtype"] == "tombstone"
    assert tombstone["text"] == "This message was deleted." and tombstone["reply_count"] == 2
    assert events[7]["deleted_ts"] == first_reply.ts
    assert events[7]["previous_message"]["text"] == "reply"
    profile = events[8]["user"]["profile"]
    assert profile["display_name"] == "Alice L."
    async with aiohttp.ClientSession() as http, http.get(profile["image_192"]) as resp:
        assert await resp.read() == b"new-avatar"
    assert events[9]["inviter"] == world.alice.id and events[9]["channel_type"] == "C"
    assert events[12]["channel"]["name"] == "town-square"
    assert events[13]["topic"] == "Weekly sync"
    assert len({e.payload["event_id"] for e in fake.envelopes}) == len(events)


# --- the Events API over HTTP --------------------------------------------------------------


class Receiver:
    """A minimal Events API endpoint that checks signatures with slack-sdk's verifier."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.events: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_next = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid signature")
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=500)
        data = json.loads(body)
        if data.get("type") == "url_verification":
            return web.json_response({"challenge": data["challenge"]})
        self.events.append(data)
        self.headers.append(dict(request.headers))
        return web.Response(status=200)


async def test_events_api_signed_pushes(world: World) -> None:
    fake = world.fake
    receiver = Receiver(fake.signing_secret)
    app = web.Application()
    app.router.add_post("/slack/events", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        ok, result = await fake.verify_url(url)
        assert ok, result

        payload = fake.event_payload(world.team.id, {"type": "app_mention", "text": "hi"})
        assert (await fake.push_event(url, payload)).status == 200
        assert (await fake.push_stale(url, payload)).status == 401
        assert (await fake.push_badly_signed(url, payload)).status == 401
        retry = await fake.push_event(url, payload, retry_num=1)
        assert retry.status == 200 and receiver.headers[-1]["X-Slack-Retry-Num"] == "1"
        assert [e["event_id"] for e in receiver.events] == [payload["event_id"]] * 2

        fake.events_url = url
        fake.socket_mode = False
        msg = fake.post_user_message(world.general.id, world.alice.id, "over http")
        await fake.wait_until(lambda: fake.pushes)
        sent, result = fake.pushes[0]
        assert result.status == 200 and sent["event"]["ts"] == msg.ts
        assert receiver.events[-1]["event"]["text"] == "over http"
        assert not fake.envelopes  # Socket Mode off: nothing queued for a socket

        # a failing endpoint gets retries with X-Slack-Retry-Num
        receiver.fail_next = 2
        fake.push_retry_delays = (0.05, 0.05, 0.05)
        fake.post_user_message(world.general.id, world.alice.id, "retried push")
        await fake.wait_until(lambda: len(fake.pushes) == 4)
        assert [r.status for _, r in fake.pushes[1:]] == [500, 500, 200]
        assert receiver.headers[-1]["X-Slack-Retry-Num"] == "2"
        assert receiver.events[-1]["event"]["text"] == "retried push"

        bad = SignatureVerifier(fake.signing_secret)
        body, ts = b'{"a":1}', int(time.time())
        assert bad.is_valid(body, str(ts), fake.sign(body, ts))
        assert not bad.is_valid(body, str(ts - 301), fake.sign(body, ts - 301))
    finally:
        await runner.cleanup()


async def test_a_late_answer_comes_once_the_event_is_acknowledged(world: World) -> None:
    """``answer_late``: the caller's event is taken in (acknowledged) before the answer comes;
    an event nobody acknowledges holds the answer the whole ``seconds``."""
    fake = world.fake
    listener = Listener()
    client = await _socket_client(world, listener)
    try:
        await fake.wait_for(lambda r: r.kind == "socket" and r.status == 101)
        fake.answer_late("chat.postMessage", 3.0)
        started = time.monotonic()
        posted = await world.client().chat_postMessage(channel=world.general.id, text="one")
        assert time.monotonic() - started < 3.0 and fake.envelopes[-1].acked
        [req] = await listener.wait(1)
        assert req.payload["event"]["ts"] == posted["ts"]
        listener.ack = False
        fake.answer_late("chat.postMessage", 0.5)
        started = time.monotonic()
        await world.client().chat_postMessage(channel=world.general.id, text="two")
        assert time.monotonic() - started >= 0.5 and not fake.envelopes[-1].acked
    finally:
        await client.close()


async def test_a_held_call_is_answered_once_released(world: World) -> None:
    release = world.fake.hold("auth.test")
    call = asyncio.ensure_future(world.client().auth_test())
    await asyncio.sleep(0.5)  # (an answer takes milliseconds)
    assert not call.done()
    assert [r.status for r in world.fake.calls("auth.test")] == [None]  # not answered yet
    release.set()
    assert (await asyncio.wait_for(call, 5))["ok"]
    assert (await world.client().auth_test())["ok"]  # one call only
