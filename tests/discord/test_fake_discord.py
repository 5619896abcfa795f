"""The fake Discord (tests/harness/discord_fake/) driven by the real discord.py: login, READY and
GUILD_CREATE, messages both ways, edits, deletes, reactions, webhooks (username, avatar,
threads, deleted ones), multipart uploads and cdn downloads, 429s honoured, RESUME after op 7
replaying missed dispatches, bad tokens and privileged intents, the MESSAGE_CONTENT intent."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import pytest

from tests.conftest import eventually
from tests.discord.fake_world import World, world
from tests.harness.discord_fake import GUILD_FORUM, MANAGE_WEBHOOKS, snowflake_time

pytestmark = pytest.mark.engine_independent

__all__ = ["world"]  # the fixture


async def test_snowflakes_are_monotonic_with_real_times(world: World) -> None:
    ids = [int(world.fake.ids.next()) for _ in range(1000)]
    assert ids == sorted(set(ids))
    assert abs((discord.utils.utcnow() - snowflake_time(ids[-1])).total_seconds()) < 60
    assert discord.utils.snowflake_time(ids[0]) == snowflake_time(ids[0])


async def test_login_ready_and_guild_create_reach_the_client(world: World) -> None:
    client = await world.client()
    assert client.user is not None and client.user.id == int(world.bot.id) and client.user.bot
    guild = client.get_guild(int(world.guild.id))
    assert guild is not None and guild.name == "Acme"
    channel = guild.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel) and channel.topic == "chat"
    assert client.application_id == int(world.bot.id)
    assert client.application_flags.gateway_message_content_limited
    assert world.fake.identify_count == 1
    # no request left loopback: every REST call was recorded by the fake
    paths = [(r.method, r.path) for r in world.fake.requests]
    assert ("GET", "/users/@me") in paths and ("GET", "/oauth2/applications/@me") in paths
    assert world.fake.gateway_connects[0]["v"] == "10"


async def test_on_message_gets_a_users_message(world: World) -> None:
    client = await world.client()
    sent = await world.fake.send_message(world.general, world.alice, f"hi <@{world.bot.id}>")
    await eventually(lambda: client.messages())
    msg = client.messages()[0]
    assert msg.id == int(sent["id"]) and msg.content == f"hi <@{world.bot.id}>"
    assert msg.author.id == int(world.alice.id) and msg.author.display_name == "Alice"
    assert [u.id for u in msg.mentions] == [int(world.bot.id)]
    assert msg.channel.id == int(world.general.id)


async def test_without_message_content_intent_content_is_empty(world: World) -> None:
    client = await world.client(content=False)
    await world.fake.send_message(
        world.general, world.alice, "secret", attachments=[("a.txt", b"x", "text/plain")]
    )
    await world.fake.send_message(world.general, world.alice, f"<@{world.bot.id}> for you")
    await eventually(lambda: len(client.messages()) == 2)
    first, second = client.messages()
    assert first.content == "" and first.attachments == []
    assert second.content == f"<@{world.bot.id}> for you"  # mentions keep their content
    # REST shows it all
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    fetched = await channel.fetch_message(first.id)
    assert fetched.content == "secret"


async def test_the_bot_sends_edits_and_deletes(world: World) -> None:
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    first = await world.fake.send_message(world.general, world.alice, "question")
    sent = await channel.send(
        "answer",
        reference=discord.MessageReference(message_id=int(first["id"]), channel_id=channel.id),
    )
    stored = world.fake.messages(world.general)
    assert [m["content"] for m in stored] == ["question", "answer"]
    assert stored[1]["type"] == 19 and stored[1]["message_reference"]["message_id"] == first["id"]
    assert stored[1]["mentions"][0]["id"] == world.alice.id  # a reply mentions its author
    edited = await sent.edit(content="answer!")
    assert (
        edited.edited_at is not None
        and world.fake.messages(world.general)[1]["content"] == "answer!"
    )
    await sent.add_reaction("👍")
    assert world.fake.messages(world.general)[1]["reactions"][0]["emoji"] == {
        "id": None,
        "name": "👍",
    }
    await sent.delete()
    assert [m["content"] for m in world.fake.messages(world.general)] == ["question"]
    req = world.fake.requests_to("POST", f"/channels/{world.general.id}/messages")[0]
    assert (
        req.json["content"] == "answer" and req.headers["Authorization"] == f"Bot {world.bot.token}"
    )
    # the bot's own sends reach it over the gateway too
    await eventually(lambda: any(m.id == sent.id for m in client.messages()))


async def test_history_is_newest_first_and_pages(world: World) -> None:
    client = await world.client()
    ids = [
        int((await world.fake.send_message(world.general, world.alice, str(n)))["id"])
        for n in range(7)
    ]
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    latest = [m.content async for m in channel.history(limit=3)]
    assert latest == ["6", "5", "4"]
    after = [
        m.content
        async for m in channel.history(after=discord.Object(ids[2]), limit=None, oldest_first=True)
    ]
    assert after == ["3", "4", "5", "6"]
    raw = await client.http.logs_from(channel.id, 2, after=ids[0])
    assert [m["content"] for m in raw] == ["2", "1"]  # the two right after, newest first
    around = await client.http.logs_from(channel.id, 3, around=ids[3])
    assert [m["content"] for m in around] == ["4", "3", "2"]


async def test_webhook_with_username_avatar_and_thread(world: World) -> None:
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    hook = await channel.create_webhook(name="bridge")
    assert [h.id for h in await channel.webhooks()] == [hook.id]
    root = await world.fake.send_message(world.general, world.alice, "root")
    thread = await world.fake.create_thread(world.general, root["id"], "talk", world.alice)
    assert thread.id == root["id"]
    partial = discord.Webhook.partial(hook.id, hook.token or "", client=client)
    msg = await partial.send(
        "relayed",
        username="Carol (Matrix)",
        avatar_url="https://example.org/c.png",
        wait=True,
        thread=discord.Object(int(thread.id)),
    )
    assert msg.webhook_id == hook.id and msg.author.name == "Carol (Matrix)"
    stored = world.fake.message_store[thread.id][-1]
    assert (
        stored.webhook_name == "Carol (Matrix)"
        and stored.webhook_avatar_url == "https://example.org/c.png"
    )
    query = world.fake.requests_to("POST", f"/webhooks/{hook.id}/*")[0].query
    assert query["wait"] == "1" and query["thread_id"] == thread.id
    await partial.edit_message(msg.id, content="relayed!", thread=discord.Object(int(thread.id)))
    assert world.fake.message_store[thread.id][-1].content == "relayed!"
    await eventually(lambda: any(m.webhook_id == hook.id for m in client.messages()))
    # a deleted webhook answers 404 Unknown Webhook
    world.fake.delete_webhook(hook.id)
    with pytest.raises(discord.NotFound) as err:
        await partial.send("again", wait=True)
    assert err.value.code == 10015


async def test_webhooks_need_manage_webhooks(world: World) -> None:
    locked = world.fake.add_channel(world.guild, "locked")
    world.fake.set_overwrite(locked, world.bot, deny=MANAGE_WEBHOOKS)
    client = await world.client()
    channel = client.get_channel(int(locked.id))
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.Forbidden) as err:
        await channel.create_webhook(name="bridge")
    assert err.value.code == 50013
    await channel.send("but sending works")  # only MANAGE_WEBHOOKS is denied


async def test_rate_limit_is_waited_out_and_retried(world: World) -> None:
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    world.fake.rate_limit("POST", "/channels/*/messages", retry_after=0.5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await channel.send("after the limit")
    assert loop.time() - start >= 0.5
    posts = world.fake.requests_to("POST", f"/channels/{world.general.id}/messages")
    assert [r.status for r in posts] == [429, 200]
    assert [m["content"] for m in world.fake.messages(world.general)] == ["after the limit"]


async def test_resume_after_reconnect_replays_missed_events(world: World) -> None:
    client = await world.client()
    session = world.fake.connected_sessions[0]
    world.fake.withhold_heartbeat_ack = False
    # the session's socket goes away; what happens meanwhile waits in the session's buffer
    await world.fake.send_reconnect()
    missed = await world.fake.send_message(world.general, world.alice, "while away")
    await eventually(lambda: world.fake.resume_count == 1, timeout=30)
    await eventually(lambda: any(m.id == int(missed["id"]) for m in client.messages()), timeout=30)
    assert world.fake.identify_count == 1 and client.resumed == 1
    assert world.fake.connected_sessions == [session]
    after = await world.fake.send_message(world.general, world.alice, "after")
    await eventually(lambda: any(m.id == int(after["id"]) for m in client.messages()))
    assert [m.content for m in client.messages()].count("while away") == 1


async def test_invalid_session_leads_to_a_new_identify(world: World) -> None:
    client = await world.client()
    await world.fake.invalidate_session(resumable=False)
    await eventually(lambda: world.fake.identify_count == 2, timeout=30)
    await eventually(lambda: len(world.fake.connected_sessions) == 1)
    msg = await world.fake.send_message(world.general, world.alice, "fresh")
    await eventually(lambda: any(m.id == int(msg["id"]) for m in client.messages()), timeout=30)


async def test_messages_during_an_outage_are_only_in_history(world: World) -> None:
    client = await world.client()
    async with world.fake.gateway_outage():
        during = await world.fake.send_message(world.general, world.alice, "during")
    await eventually(lambda: world.fake.identify_count == 2, timeout=60)
    after = await world.fake.send_message(world.general, world.alice, "after")
    await eventually(lambda: any(m.id == int(after["id"]) for m in client.messages()), timeout=30)
    assert not any(m.id == int(during["id"]) for m in client.messages())
    raw = await client.http.logs_from(int(world.general.id), 50, after=int(during["id"]) - 1)
    assert [m["content"] for m in raw] == ["after", "during"]


async def test_bad_token_fails_login_and_4004_closes(world: World) -> None:
    intents = discord.Intents.default()
    client = discord.Client(intents=intents)
    world.clients.append(client)
    with pytest.raises(discord.LoginFailure):
        await client.login("nope")
    assert world.fake.requests[-1].status == 401
    # a token refused after login: IDENTIFY closes 4004, which discord.py does not retry
    bot = await world.client(wait=False)
    world.fake.refuse_token(world.bot.token)
    assert bot.task is not None
    with pytest.raises(discord.ConnectionClosed) as err:
        await asyncio.wait_for(bot.task, 30)
    assert err.value.code == 4004


async def test_privileged_intents_refused_with_4014(world: World) -> None:
    shy = world.fake.add_bot("shy", privileged_intents=False)
    world.fake.add_member(world.guild, shy)
    client = await world.client(shy.token, content=True, wait=False)
    assert client.task is not None
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.task, 30)
    ok = await world.client(shy.token, content=False)
    assert ok.user is not None and ok.user.id == int(shy.id)
    assert not ok.application_flags.gateway_message_content_limited
    with pytest.raises(discord.Forbidden):  # listing members needs the GUILD_MEMBERS toggle
        await ok.http.get_members(int(world.guild.id), 10, None)


async def test_attachments_upload_multipart_and_download_from_the_cdn(world: World) -> None:
    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    import io

    sent = await channel.send(
        "a file",
        file=discord.File(
            io.BytesIO(b"\x89PNG-bytes"), filename="pic.png", description="a picture"
        ),
    )
    att = sent.attachments[0]
    assert att.filename == "pic.png" and att.size == 10 and att.description == "a picture"
    assert att.url.startswith(world.fake.cdn_url + "/attachments/")
    assert await att.read() == b"\x89PNG-bytes"
    # a user's upload is downloadable by any HTTP client
    got = await world.fake.send_message(
        world.general, world.alice, "", attachments=[("n.txt", b"notes", "text/plain")]
    )
    async with aiohttp.ClientSession() as http, http.get(got["attachments"][0]["url"]) as resp:
        assert resp.status == 200 and await resp.read() == b"notes"
        assert resp.headers["Content-Type"].startswith("text/plain")
    req = world.fake.requests_to("POST", f"/channels/{world.general.id}/messages")[0]
    assert req.files == [("pic.png", b"\x89PNG-bytes", "application/octet-stream")]


async def test_unknown_route_is_a_404_and_recorded(world: World) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            world.fake.api_url + "/nonsense/1", headers={"Authorization": f"Bot {world.bot.token}"}
        )
        assert resp.status == 404 and resp.headers["Content-Type"] == "application/json"
        assert await resp.json() == {"message": "404: Not Found", "code": 0}
        bad = await http.get(
            world.fake.api_url + "/users/@me", headers={"Authorization": "Bot wrong"}
        )
        assert bad.status == 401 and await bad.json() == {"message": "401: Unauthorized", "code": 0}
    assert world.fake.requests[-2].path == "/nonsense/1" and world.fake.requests[-2].status == 404


async def test_forum_posts_threads_and_reactions_dispatch(world: World) -> None:
    forum = world.fake.add_channel(world.guild, "ideas", type=GUILD_FORUM)
    client = await world.client()
    post = await world.fake.create_forum_post(forum, world.alice, "Idea", "let us build")
    await eventually(lambda: any(m.id == int(post.id) for m in client.messages()))
    msg = next(m for m in client.messages() if m.id == int(post.id))
    assert isinstance(msg.channel, discord.Thread) and msg.channel.parent_id == int(forum.id)
    await world.fake.add_reaction(
        world.general,
        (await world.fake.send_message(world.general, world.bob, "x"))["id"],
        world.alice,
        {"id": "42", "name": "party", "animated": True},
    )
    await eventually(lambda: any(k == "reaction" for k, _ in client.got))
    reaction = next(p for k, p in client.got if k == "reaction")
    assert (
        reaction.emoji.id == 42
        and reaction.emoji.animated
        and reaction.user_id == int(world.alice.id)
    )


async def test_storm_closes_new_sessions_after_guild_create(world: World) -> None:
    world.fake.storm(4002)
    client = await world.client(wait=False)
    await eventually(lambda: world.fake.identify_count >= 2, timeout=60)
    world.fake.storm(None)
    await asyncio.wait_for(client.wait_until_ready(), 60)
    assert world.fake.resume_count >= 1  # discord.py tried to resume; the fake said op 9


async def test_remote_actions_reach_discord_py(world: World) -> None:
    client = await world.client(members=True)
    fake, general = world.fake, world.general
    first = await fake.send_message(general, world.alice, "one")
    second = await fake.send_message(general, world.alice, "two")
    third = await fake.send_message(general, world.bob, "three")
    await fake.edit_message(general, first["id"], "one, edited")
    await fake.add_reaction(general, first["id"], world.bob, "🎉")
    await fake.remove_reaction(general, first["id"], world.bob, "🎉")
    await fake.typing(general, world.bob)
    await fake.delete_message(general, first["id"])
    await fake.delete_messages(general, [second["id"], third["id"]])
    await fake.update_channel(general, name="lobby", topic="new topic")
    await fake.update_member(world.guild, world.bob, nick="Bobby")
    role = fake.add_role(world.guild, "mods", permissions=0)
    await fake.update_user(world.bot, global_name="Bridge")
    # USER_UPDATE to the bot itself, GUILD_MEMBER_UPDATE to its guilds
    await eventually(lambda: client.types.count("GUILD_MEMBER_UPDATE") == 2)
    kinds = [k for k, _ in client.got]
    assert kinds.count("message") == 3
    edit = next(p for k, p in client.got if k == "edit")
    assert edit.message_id == int(first["id"]) and edit.data["content"] == "one, edited"
    assert next(p for k, p in client.got if k == "unreaction").emoji.name == "🎉"
    assert next(p for k, p in client.got if k == "typing").user_id == int(world.bob.id)
    assert next(p for k, p in client.got if k == "delete").message_id == int(first["id"])
    bulk = next(p for k, p in client.got if k == "bulk_delete")
    assert bulk.message_ids == {int(second["id"]), int(third["id"])}
    assert next(p for k, p in client.got if k == "channel_update").name == "lobby"
    assert client.types[-5:] == [
        "CHANNEL_UPDATE",
        "GUILD_MEMBER_UPDATE",
        "GUILD_ROLE_CREATE",
        "USER_UPDATE",
        "GUILD_MEMBER_UPDATE",
    ]
    guild = client.get_guild(int(world.guild.id))
    assert guild is not None and guild.get_role(int(role.id)) is not None
    assert client.user is not None and client.user.global_name == "Bridge"
    assert fake.messages(general) == []


async def test_a_global_rate_limit_holds_every_request(world: World) -> None:
    client = await world.client()
    world.fake.rate_limit("GET", "/users/*", retry_after=0.4, global_=True)
    loop = asyncio.get_running_loop()
    start = loop.time()
    user = await client.fetch_user(int(world.alice.id))
    assert user.name == "alice" and loop.time() - start >= 0.4
    resp = world.fake.requests_to("GET", "/users/*")
    assert [r.status for r in resp][-2:] == [429, 200]


async def test_avatars_are_served_from_the_cdn(world: World) -> None:
    png = b"\x89PNG\r\n\x1a\nfake-avatar"
    erin = world.fake.add_user("erin", avatar=png)
    world.fake.add_member(world.guild, erin, avatar=b"\x89PNG guild avatar")
    client = await world.client()
    user = await client.fetch_user(int(erin.id))
    assert user.avatar is not None and user.avatar.url.startswith(world.fake.cdn_url + "/avatars/")
    assert await user.avatar.read() == png
    member = await client.get_guild(int(world.guild.id)).fetch_member(int(erin.id))  # type: ignore[union-attr]
    assert member.guild_avatar is not None
    assert await member.guild_avatar.read() == b"\x89PNG guild avatar"
    await world.fake.update_user(erin, avatar=b"new face")
    assert world.fake.avatar_url(erin) is not None
    async with aiohttp.ClientSession() as http, http.get(world.fake.avatar_url(erin) or "") as resp:
        assert await resp.read() == b"new face"


async def test_edits_keep_or_drop_attachments(world: World) -> None:
    import io

    client = await world.client()
    channel = client.get_channel(int(world.general.id))
    assert isinstance(channel, discord.TextChannel)
    files = [discord.File(io.BytesIO(b"a"), "a.txt"), discord.File(io.BytesIO(b"b"), "b.txt")]
    sent = await channel.send("two files", files=files)
    assert [a.filename for a in sent.attachments] == ["a.txt", "b.txt"]
    kept = await sent.edit(attachments=[sent.attachments[1]])
    assert [a.filename for a in kept.attachments] == ["b.txt"]
    added = await kept.edit(
        attachments=[*kept.attachments, discord.File(io.BytesIO(b"c"), "c.txt")]
    )
    assert [a.filename for a in added.attachments] == ["b.txt", "c.txt"]
    assert await added.attachments[1].read() == b"c"
    text_only = await added.edit(content="no change to files")
    assert [a.filename for a in text_only.attachments] == ["b.txt", "c.txt"]
    hook = world.fake.add_webhook(world.general, world.bot, "relay")
    partial = discord.Webhook.partial(int(hook.id), hook.token, client=client)
    relayed = await partial.send("file", file=discord.File(io.BytesIO(b"w"), "w.txt"), wait=True)
    edited = await partial.edit_message(relayed.id, attachments=[])
    assert edited.attachments == [] and world.fake.messages(world.general)[-1]["attachments"] == []
