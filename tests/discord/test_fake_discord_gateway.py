"""The fake Discord's gateway and auth edges, driven by discord.py and by a raw websocket:
withheld heartbeat ACKs, dispatches lost while the gateway is paused, the echo of a send
delivered before its HTTP reply, malformed dispatches, user tokens (bare Authorization, READY
with private channels, DMs), intents for member events, 5xx retries, webhook 429s,
``allowed_mentions``, threads and forum posts made through REST."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest

from tests.conftest import eventually
from tests.discord.fake_world import World, world
from tests.harness.discord_fake import GUILD_FORUM, VIEW_CHANNEL, FakeDiscord

pytestmark = pytest.mark.engine_independent

__all__ = ["world"]  # the fixture


class RawGateway:
    """A bare websocket client: what the fake sends, frame by frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame = await self.ws.receive(timeout=timeout)
        assert frame.type == aiohttp.WSMsgType.TEXT, frame
        return json.loads(frame.data)

    async def until(self, t: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame.get("t") == t:
                return frame

    async def send(self, payload: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(payload))


async def raw_gateway(
    fake: FakeDiscord, http: aiohttp.ClientSession, token: str, intents: int
) -> RawGateway:
    ws = await http.ws_connect(fake.gateway_url + "?v=10&encoding=json")
    gw = RawGateway(ws)
    hello = await gw.recv()
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
    await gw.send({"op": 2, "d": {"token": token, "intents": intents, "properties": {}}})
    return gw


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_withheld_heartbeat_acks_make_the_client_reconnect(world: World) -> None:
    world.fake.heartbeat_interval_ms = 300
    client = await world.client(heartbeat_timeout=1.5)
    world.fake.withhold_heartbeat_ack = True
    await eventually(lambda: world.fake.resume_count >= 1, timeout=30)
    world.fake.withhold_heartbeat_ack = False
    await eventually(lambda: len(world.fake.connected_sessions) == 1, timeout=30)
    msg = await world.fake.send_message(world.general, world.alice, "still here")
    await eventually(lambda: any(m.id == int(msg["id"]) for m in client.messages()), timeout=30)
    assert world.fake.identify_count == 1  # resumed, not identified again


async def test_paused_gateway_drops_dispatches_but_history_has_them(world: World) -> None:
    client = await world.client()
    world.fake.gateway_paused = True
    lost = await world.fake.send_message(world.general, world.alice, "lost")
    world.fake.gateway_paused = False
    seen = await world.fake.send_message(world.general, world.alice, "seen")
    await eventually(lambda: any(m.id == int(seen["id"]) for m in client.messages()))
    assert [m.content for m in client.messages()] == ["seen"]
    assert world.fake.lost_dispatches == ["MESSAGE_CREATE"]
    raw = await client.http.logs_from(int(world.general.id), 10, after=int(lost["id"]) - 1)
    assert [m["content"] for m in raw] == ["seen", "lost"]


async def test_echo_before_reply_writes_the_event_before_the_answer(
    world: World, http: aiohttp.ClientSession
) -> None:
    gw = await raw_gateway(world.fake, http, world.bot.token, (1 << 16) - 1)
    await gw.until("GUILD_CREATE")
    url = f"{world.fake.api_url}/channels/{world.general.id}/messages"
    auth = {"Authorization": f"Bot {world.bot.token}"}
    # a lagging gateway: the reply comes first, the echo later
    world.fake.echo_delay = 0.3
    reply = await http.post(url, json={"content": "one"}, headers=auth)
    with pytest.raises(asyncio.TimeoutError):
        await gw.recv(timeout=0.05)
    assert (await gw.until("MESSAGE_CREATE"))["d"]["id"] == (await reply.json())["id"]
    # echo_before_reply: the same lag, but the reply waits until the echo is on the wire
    world.fake.echo_before_reply = True
    reply = await http.post(url, json={"content": "two"}, headers=auth)
    frame = await gw.recv(timeout=0.05)  # already in the socket: no wait needed
    assert frame["t"] == "MESSAGE_CREATE" and frame["d"]["id"] == (await reply.json())["id"]


async def test_raw_dispatches_and_sequence_numbers(
    world: World, http: aiohttp.ClientSession
) -> None:
    gw = await raw_gateway(world.fake, http, world.bot.token, 1 | (1 << 9))
    ready = await gw.recv()
    assert ready["t"] == "READY" and ready["s"] == 1
    assert ready["d"]["resume_gateway_url"] == world.fake.gateway_url
    assert ready["d"]["guilds"] == [{"id": world.guild.id, "unavailable": True}]
    create = await gw.recv()
    assert create["t"] == "GUILD_CREATE" and create["s"] == 2
    assert [c["name"] for c in create["d"]["channels"]] == ["general"]
    world.fake.send_raw_dispatch("MESSAGE_CREATE", {"id": "not-a-snowflake"})
    bad = await gw.recv()
    assert bad == {"op": 0, "t": "MESSAGE_CREATE", "s": 3, "d": {"id": "not-a-snowflake"}}
    await gw.send({"op": 1, "d": 3})
    assert await gw.recv() == {"op": 11}
    # RESUME on a new socket from seq 2 replays seq 3 then says RESUMED
    session_id = ready["d"]["session_id"]
    await gw.ws.close(code=4000)  # as discord.py does before resuming (1000 would end it)
    ws2 = await http.ws_connect(world.fake.gateway_url)
    gw2 = RawGateway(ws2)
    await gw2.recv()  # HELLO
    await gw2.send({"op": 6, "d": {"token": world.bot.token, "session_id": session_id, "seq": 2}})
    assert (await gw2.recv())["s"] == 3
    resumed = await gw2.recv()
    assert resumed["t"] == "RESUMED" and resumed["s"] == 4
    # an unknown session cannot resume: op 9 false
    ws3 = await http.ws_connect(world.fake.gateway_url)
    gw3 = RawGateway(ws3)
    await gw3.recv()
    await gw3.send({"op": 6, "d": {"token": world.bot.token, "session_id": "nope", "seq": 1}})
    assert await gw3.recv() == {"op": 9, "d": False}


async def test_user_tokens_use_bare_authorization_and_see_their_dms(
    world: World, http: aiohttp.ClientSession
) -> None:
    carol = world.fake.add_user("carol", token="carol-user-token")
    world.fake.add_member(world.guild, carol)
    dm = world.fake.add_dm(carol, world.alice)
    me = await http.get(
        world.fake.api_url + "/users/@me", headers={"Authorization": "carol-user-token"}
    )
    assert me.status == 200 and (await me.json())["id"] == carol.id
    as_bot = await http.get(
        world.fake.api_url + "/users/@me", headers={"Authorization": "Bot carol-user-token"}
    )
    assert as_bot.status == 401
    bare_bot = await http.get(
        world.fake.api_url + "/users/@me", headers={"Authorization": world.bot.token}
    )
    assert bare_bot.status == 401
    gw = await raw_gateway(world.fake, http, "carol-user-token", 0)
    ready = await gw.until("READY")
    assert [c["id"] for c in ready["d"]["private_channels"]] == [dm.id]
    assert "application" not in ready["d"]
    await gw.until("GUILD_CREATE")
    await world.fake.send_message(dm, world.alice, "psst")
    frame = await gw.until("MESSAGE_CREATE")
    assert frame["d"]["content"] == "psst" and "guild_id" not in frame["d"]


async def test_dm_to_the_bot_reaches_on_message(world: World) -> None:
    client = await world.client(content=False)  # DMs keep their content without the intent
    dm = world.fake.add_dm(world.alice, world.bot)
    await world.fake.send_message(dm, world.alice, "hello bot")
    await eventually(lambda: client.messages())
    msg = client.messages()[0]
    assert msg.content == "hello bot" and isinstance(msg.channel, discord.DMChannel)
    reply = await msg.channel.send("hello alice")
    assert world.fake.messages(dm)[-1]["id"] == str(reply.id)
    opened = await client.http.start_private_message(int(world.bob.id))
    assert opened["type"] == 1 and {r["id"] for r in opened["recipients"]} == {world.bob.id}


async def test_member_events_need_the_members_intent(world: World) -> None:
    plain = await world.client(members=False)
    with_members = await world.client(members=True)
    joined: list[int] = []

    async def on_member_join(member: discord.Member) -> None:
        joined.append(member.id)

    with_members.on_member_join = on_member_join  # type: ignore[attr-defined]
    dave = world.fake.add_user("dave")
    world.fake.add_member(world.guild, dave, nick="D")
    await eventually(lambda: joined == [int(dave.id)])
    types_plain = {t for sid, t, _ in world.fake.dispatched if sid == world.fake.sessions[0].id}
    assert "GUILD_MEMBER_ADD" not in types_plain
    assert plain.user is not None


async def test_server_errors_are_retried_by_discord_py(world: World) -> None:
    client = await world.client()
    world.fake.fail("GET", f"/channels/{world.general.id}", 502)
    channel = await client.fetch_channel(int(world.general.id))
    assert channel.id == int(world.general.id)
    assert [r.status for r in world.fake.requests_to("GET", f"/channels/{world.general.id}")] == [
        502,
        200,
    ]
    world.fake.fail(
        "GET", f"/channels/{world.general.id}", 403, code=50001, message="Missing Access"
    )
    with pytest.raises(discord.Forbidden):
        await client.fetch_channel(int(world.general.id))


async def test_webhook_429_is_honoured(world: World) -> None:
    client = await world.client()
    hook = world.fake.add_webhook(world.general, world.bot, "relay")
    partial = discord.Webhook.partial(int(hook.id), hook.token, client=client)
    world.fake.rate_limit("POST", "/webhooks/*", retry_after=0.3)
    msg = await partial.send("later", wait=True, username="Eve")
    assert msg.author.name == "Eve"
    assert [r.status for r in world.fake.requests_to("POST", "/webhooks/*")] == [429, 200]


async def test_allowed_mentions_are_honoured(world: World) -> None:
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    await channel.send(
        f"hi <@{world.alice.id}> @everyone", allowed_mentions=discord.AllowedMentions.none()
    )
    await channel.send(
        f"hi <@{world.alice.id}> <@{world.bob.id}>",
        allowed_mentions=discord.AllowedMentions(
            users=[discord.Object(int(world.bob.id))], everyone=False
        ),
    )
    quiet, picked = world.fake.messages(world.general)
    assert quiet["mentions"] == [] and quiet["mention_everyone"] is False
    assert [u["id"] for u in picked["mentions"]] == [world.bob.id]


async def test_threads_and_forum_posts_through_rest(world: World) -> None:
    forum = world.fake.add_channel(world.guild, "ideas", type=GUILD_FORUM)
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    root = await channel.send("root")
    thread = await root.create_thread(name="side talk")
    assert thread.id == root.id and thread.parent_id == channel.id
    in_thread = await thread.send("inside")
    assert world.fake.messages(thread.id)[0]["id"] == str(in_thread.id)
    forum_channel = client.get_channel(int(forum.id))
    assert isinstance(forum_channel, discord.ForumChannel)
    post = await forum_channel.create_thread(name="Post", content="first words")
    assert post.thread.id == post.message.id and post.message.content == "first words"
    loose = await channel.create_thread(name="no root", type=discord.ChannelType.public_thread)
    system = world.fake.messages(world.general)[-1]
    assert system["type"] == 18 and system["message_reference"]["channel_id"] == str(loose.id)
    await eventually(lambda: client.get_channel(loose.id) is not None)


async def test_close_codes_resume_or_end_as_discord_py_expects(world: World) -> None:
    client = await world.client()
    await world.fake.close_sessions(4000)  # resumable: discord.py RESUMEs
    await eventually(lambda: client.resumed == 1, timeout=30)
    assert world.fake.identify_count == 1
    await world.fake.close_sessions(4014)  # fatal: discord.py gives up
    assert client.task is not None
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.task, 30)


async def test_a_client_closing_ends_its_session(world: World, http: aiohttp.ClientSession) -> None:
    gw = await raw_gateway(world.fake, http, world.bot.token, 1)
    ready = await gw.until("READY")
    await gw.ws.close(code=1000)
    await eventually(lambda: not world.fake.connected_sessions)
    ws = await http.ws_connect(world.fake.gateway_url)
    again = RawGateway(ws)
    await again.recv()
    await again.send(
        {"op": 6, "d": {"token": world.bot.token, "session_id": ready["d"]["session_id"], "seq": 1}}
    )
    assert await again.recv() == {"op": 9, "d": False}


async def test_wrong_method_and_bad_json(world: World, http: aiohttp.ClientSession) -> None:
    auth = {"Authorization": f"Bot {world.bot.token}"}
    resp = await http.put(world.fake.api_url + "/users/@me", headers=auth)
    assert resp.status == 405 and (await resp.json())["code"] == 0
    url = f"{world.fake.api_url}/channels/{world.general.id}/messages"
    bad = await http.post(url, data=b"{nope", headers=auth | {"Content-Type": "application/json"})
    assert bad.status == 400 and (await bad.json())["code"] == 50109
    assert "Bot" not in repr(world.fake.requests[-1])  # records keep tokens out of their repr


async def test_a_hidden_channel_is_neither_listed_nor_dispatched(world: World) -> None:
    secret = world.fake.add_channel(world.guild, "secret")
    world.fake.set_overwrite(secret, world.guild, deny=VIEW_CHANNEL)  # @everyone: hidden
    world.fake.set_overwrite(secret, world.alice, allow=VIEW_CHANNEL)
    client = await world.client()
    guild = client.get_guild(int(world.guild.id))
    assert guild is not None and guild.get_channel(int(secret.id)) is None
    await world.fake.send_message(secret, world.alice, "psst")
    visible = await world.fake.send_message(world.general, world.alice, "hello")
    await eventually(lambda: any(m.id == int(visible["id"]) for m in client.messages()))
    assert [m.content for m in client.messages()] == ["hello"]
    with pytest.raises(discord.Forbidden) as err:
        await client.http.logs_from(int(secret.id), 10)
    assert err.value.code == 50001
