"""Several networks in one bridge process: IRC and XMPP enabled in one config, against a real
InspIRCd, Prosody and Synapse. Messages go both ways on both networks at once (mentions and
replies included), the bridge restarts in the middle, and every message arrives exactly once.
Then Slack and Discord (the wire-level fakes, Discord driven by the real discord.py) beside
them: IRC, XMPP, Slack and Discord bridged by one process.

Each connector gets a view of the runtime bound to its own network (``BridgeAPI``), so an
IRC line mentioning a known nick finds the IRC ghost, not ``KeyError('')`` from a runtime
that had to guess which network asked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from bridgekit.bridge import Bridge, discover_connectors
from bridgekit.registration import build_registration
from bridgekit.testing.matrix_client import MatrixTestClient
from tests.conftest import BridgeEnv, eventually
from tests.discord.conftest import (  # noqa: F401 - fixtures
    _quick_ready,
    discord_fake,
    discord_networks,
    discord_world,
    login_bot,
)
from tests.harness.inspircd import InspIRCd
from tests.harness.irc_client import IrcTestClient
from tests.harness.prosody import Prosody, XmppTestClient
from tests.irc.conftest import ircd  # noqa: F401 - fixture
from tests.irc.e2e import alias as irc_alias
from tests.irc.e2e import ghost as irc_ghost
from tests.irc.e2e import irc_networks, irc_user, is_puppet_join, privmsg_from
from tests.slack.conftest import (  # noqa: F401 - fixtures
    _no_proxy,
    login_app,
    open_channel,
    slack_fake,
    slack_networks,
    slack_world,
)
from tests.xmpp.conftest import alias as xmpp_alias
from tests.xmpp.conftest import ghost as xmpp_ghost
from tests.xmpp.conftest import prosody, xmpp_clients  # noqa: F401 - fixtures
from tests.xmpp.helpers import add, child, newer, reflected, stanza_id

REPLY = "urn:xmpp:reply:0"
FALLBACK = "urn:xmpp:fallback:0"


def networks(ircd: InspIRCd, prosody: Prosody) -> dict[str, Any]:  # noqa: F811
    return {**irc_networks(ircd), "xmpp": prosody.bridge_config()}


async def start(make_bridge: Any, ircd: InspIRCd, prosody: Prosody) -> Bridge:  # noqa: F811
    bridge = await make_bridge(networks=networks(ircd, prosody))
    assert set(bridge.connectors) == {"irc", "xmpp"}
    component = bridge.connectors["xmpp"].component
    assert await component.wait_online(15), component.last_error
    return bridge


def body_is(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


def occupant_of(room: str, *not_nicks: str) -> Callable[[Any], bool]:
    """Presence of a new occupant of ``room`` (Alice's, from the bridge) that is available."""
    return lambda p: (
        p["from"].bare == room
        and p["from"].resource not in ("", *not_nicks)
        and p["type"] != "unavailable"
    )


def count(alice: MatrixTestClient, room_id: str, text: str) -> int:
    return sum(1 for e in alice.history(room_id) if body_is(text)(e))


async def exchange(
    alice: MatrixTestClient,
    rooms: tuple[str, str],
    bob: IrcTestClient,
    channel: str,
    puppet: str,
    dave: XmppTestClient,
    muc: str,
    tag: str,
) -> None:
    """One message each way on each network, all sent before any is awaited."""
    irc_room, xmpp_room = rooms
    texts = {k: f"{tag} {k}" for k in ("irc-in", "irc-out", "xmpp-in", "xmpp-out")}
    await bob.privmsg(channel, texts["irc-in"])
    dave.say(muc, texts["xmpp-in"])
    await asyncio.gather(
        alice.send_text(irc_room, texts["irc-out"]), alice.send_text(xmpp_room, texts["xmpp-out"])
    )
    got_irc, got_xmpp, in_irc, in_xmpp = await asyncio.gather(
        bob.wait_for(privmsg_from(puppet, texts["irc-out"]), 20),
        dave.wait_for(lambda m: m["body"] == texts["xmpp-out"], 20),
        alice.wait_for_event(irc_room, body_is(texts["irc-in"]), timeout=20),
        alice.wait_for_event(xmpp_room, body_is(texts["xmpp-in"]), timeout=20),
    )
    assert got_xmpp["from"].bare == muc
    assert in_irc["sender"] == irc_ghost(bob.nick)
    assert in_xmpp["sender"] == xmpp_ghost(f"{muc}/Dave")


async def test_irc_and_xmpp_in_one_bridge_with_a_restart(
    make_bridge,
    ircd: InspIRCd,  # noqa: F811
    prosody: Prosody,  # noqa: F811
    bridge_env: BridgeEnv,
    xmpp_clients,  # noqa: F811
    uid,
) -> None:
    bridge = await start(make_bridge, ircd, prosody)
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    carol = await irc_user(ircd, uid("carol"), channel)
    dave = await xmpp_clients(prosody, uid("dave"))
    muc = f"{uid('room')}@{prosody.muc}"
    await dave.join(muc, "Dave")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    try:
        async with alice:
            irc_room = await alice.join(irc_alias(channel))
            xmpp_room = await alice.join(xmpp_alias(muc))
            joined, occupant = await asyncio.gather(
                bob.wait_for(is_puppet_join(channel), 30),
                dave.wait_for(occupant_of(muc, "Dave"), presences=True),
            )
            puppet, nick = joined.nick, occupant["from"].resource
            assert puppet
            rooms = (irc_room, xmpp_room)
            await exchange(alice, rooms, bob, channel, puppet, dave, muc, "before")

            # Mentions. An IRC line naming a known nick (the lookup of its ghost is the one
            # that had no network to go by), and Matrix pills of each network's ghosts.
            await bob.privmsg(channel, f"{carol.nick}: look")
            pill = await alice.wait_for_event(irc_room, body_is(f"{carol.nick}: look"))
            assert irc_ghost(carol.nick) in pill["content"]["formatted_body"]
            await alice.send_message(irc_room, _pill(irc_ghost(bob.nick), "bob", "hi irc"))
            await alice.send_message(xmpp_room, _pill(xmpp_ghost(f"{muc}/Dave"), "Dave", "hi"))
            said = await bob.wait_for(privmsg_from(puppet), 20)
            assert said.trailing == f"{bob.nick}: hi irc"
            heard = await dave.wait_for(lambda m: m["body"].endswith(": hi"), 20)
            assert heard["body"] == "Dave: hi"

            # Replies, each way on each network.
            question = await alice.wait_for_event(irc_room, body_is("before irc-in"))
            await alice.send_message(irc_room, _reply(question["event_id"], "irc answer"))
            answer = await bob.wait_for(privmsg_from(puppet, f"{bob.nick}: irc answer"), 20)
            assert answer.tags.get("+draft/reply")
            mine = await alice.send_text(irc_room, "asked on matrix")
            seen = await bob.wait_for(privmsg_from(puppet, "asked on matrix"), 20)
            await bob.send_line_tagged(
                {"+draft/reply": seen.tags["msgid"]}, "PRIVMSG", channel, "irc reply"
            )
            back = await alice.wait_for_event(irc_room, body_is("irc reply"))
            assert back["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == mine

            first = await reflected(dave, muc, dave.say(muc, "xmpp question"))
            original = await alice.wait_for_event(xmpp_room, body_is("xmpp question"))
            await alice.send_message(xmpp_room, _reply(original["event_id"], "xmpp answer"))
            answered = await dave.wait_for(lambda m: m["body"] == "xmpp answer", 20)
            assert child(answered, REPLY, "reply").get("id") == stanza_id(first, muc)
            mine = await alice.send_text(xmpp_room, "asked on matrix too")
            seen_x = await dave.wait_for(lambda m: m["body"] == "asked on matrix too", 20)
            quote = "> Alice:\n> asked on matrix too\n"
            reply = dave.make(muc, quote + "xmpp reply")
            add(reply, REPLY, "reply", id=stanza_id(seen_x, muc), to=f"{muc}/{nick}")
            fb = add(reply, FALLBACK, "fallback", **{"for": REPLY})
            fb.append(fb.makeelement(f"{{{FALLBACK}}}body", {"start": "0", "end": str(len(quote))}))
            reply.send()
            back = await alice.wait_for_event(xmpp_room, body_is("xmpp reply"))
            assert back["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == mine

            # Lookups through a connector's BridgeAPI stay within its network.
            row = await bridge.store.message_by_event(original["event_id"])
            assert row is not None and row.network == "xmpp"
            xmpp_api, irc_api = (bridge.connectors[n].bridge for n in ("xmpp", "irc"))
            assert await xmpp_api.find_message(row.portal, row.remote_id) == original["event_id"]
            assert await irc_api.find_message(row.portal, row.remote_id) is None
            assert await xmpp_api.find_remote_id(row.portal, original["event_id"]) == row.remote_id
            assert await irc_api.find_remote_id(row.portal, original["event_id"]) is None

            # A restart in the middle: both networks come back in the one process.
            back_in_muc = newer(dave.presences, occupant_of(muc, "Dave"))
            await make_bridge.stop(bridge)
            # Said on Matrix while the bridge is down: the homeserver holds it until it is back.
            await alice.send_text(irc_room, "while down irc")
            await alice.send_text(xmpp_room, "while down xmpp")
            bridge = await start(make_bridge, ircd, prosody)
            await asyncio.gather(
                bob.wait_for(is_puppet_join(channel), 30),
                dave.wait_for(back_in_muc, presences=True, timeout=30),
            )
            await asyncio.gather(
                bob.wait_for(privmsg_from(puppet, "while down irc"), 30),
                dave.wait_for(lambda m: m["body"] == "while down xmpp", 30),
            )
            await exchange(alice, rooms, bob, channel, puppet, dave, muc, "after")
            await bob.privmsg(channel, f"again {carol.nick}")
            pill = await alice.wait_for_event(irc_room, body_is(f"again {carol.nick}"))
            assert irc_ghost(carol.nick) in pill["content"]["formatted_body"]

            # Exactly once: nothing was bridged twice across the restart.
            await asyncio.sleep(1)
            for tag in ("before", "after"):
                assert count(alice, irc_room, f"{tag} irc-in") == 1
                assert count(alice, xmpp_room, f"{tag} xmpp-in") == 1
            for text in ("irc reply", f"{carol.nick}: look"):
                assert count(alice, irc_room, text) == 1
            for text in ("xmpp reply", "xmpp question"):
                assert count(alice, xmpp_room, text) == 1
            for text in ("before xmpp-out", "while down xmpp", "after xmpp-out"):
                assert dave.bodies(muc).count(text) == 1
            for text in ("before irc-out", "while down irc", "after irc-out"):
                assert len([m for m in bob.history if privmsg_from(puppet, text)(m)]) == 1
    finally:
        await bob.close()
        await carol.close()


def _pill(mxid: str, name: str, text: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": f"{name}: {text}",
        "format": "org.matrix.custom.html",
        "formatted_body": f'<a href="https://matrix.to/#/{mxid}">{name}</a>: {text}',
        "m.mentions": {"user_ids": [mxid]},
    }


def _reply(event_id: str, text: str) -> dict[str, Any]:
    return {
        "msgtype": "m.text",
        "body": f"> <@x> quoted\n\n{text}",
        "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
    }


async def test_irc_xmpp_slack_and_discord_in_one_bridge(
    slack_world,  # noqa: F811 - first: the bridge stops before the fake Slack at teardown
    discord_world,  # noqa: F811 - and before the fake Discord
    make_bridge,
    ircd: InspIRCd,  # noqa: F811
    prosody: Prosody,  # noqa: F811
    bridge_env: BridgeEnv,
    xmpp_clients,  # noqa: F811
    uid,
) -> None:
    """One process bridges IRC, XMPP, Slack and Discord at once: a message each way on each
    network, each network's ghosts in its own namespace, Alice with logins on several networks,
    no event of one network reaching another's portal, and a registration that covers them
    all."""
    fake, dworld = slack_world.fake, discord_world
    dfake = dworld.fake
    bridge = await make_bridge(
        networks={
            **networks(ircd, prosody),
            **slack_networks(fake),
            "discord": discord_networks(dfake)["discord"],
        }
    )
    assert {"irc", "xmpp", "slack", "discord"} <= set(bridge.connectors)
    component = bridge.connectors["xmpp"].component
    assert await component.wait_online(15), component.last_error
    channel = "#" + uid("chan")
    bob = await irc_user(ircd, uid("bob"), channel)
    dave = await xmpp_clients(prosody, uid("dave"))
    muc = f"{uid('room')}@{prosody.muc}"
    await dave.join(muc, "Dave")
    alice = await bridge_env.synapse.register_user(uid("alice"))
    try:
        async with alice:
            await login_app(bridge, alice, slack_world)
            slack_room = await open_channel(
                bridge, slack_world, alice, slack_world.general, slack_world.bob
            )
            # Discord: the bot Alice logs in bridges the guild; its #general is a portal.
            await login_bot(bridge, alice, dworld)
            await dfake.send_message(dworld.general, dworld.bob, "discord first")
            discord_room, _ = await alice.wait_for_invite()
            await alice.join(discord_room)
            await alice.wait_for_event(discord_room, body_is("discord first"))
            irc_room = await alice.join(irc_alias(channel))
            xmpp_room = await alice.join(xmpp_alias(muc))
            joined, _ = await asyncio.gather(
                bob.wait_for(is_puppet_join(channel), 30),
                dave.wait_for(occupant_of(muc, "Dave"), presences=True),
            )
            puppet = joined.nick
            # Alice's logins: the Slack app and the Discord bot she logged in, and her IRC
            # connection.
            networks_of_alice = {c.login.network for c in bridge.logins.clients_of(alice.user_id)}
            assert {"slack", "discord", "irc"} <= networks_of_alice, networks_of_alice

            # All at once: one message each way on each network.
            fake.post_user_message(slack_world.general.id, slack_world.bob.id, "slack-in")
            await asyncio.gather(
                exchange(alice, (irc_room, xmpp_room), bob, channel, puppet, dave, muc, "m"),
                alice.send_text(slack_room, "slack-out"),
                dfake.send_message(dworld.general, dworld.bob, "discord-in"),
                alice.send_text(discord_room, "discord-out"),
            )
            slack_in, discord_in = await asyncio.gather(
                alice.wait_for_event(slack_room, body_is("slack-in"), timeout=20),
                alice.wait_for_event(discord_room, body_is("discord-in"), timeout=20),
            )
            posted = await fake.wait_for(
                lambda r: r.method == "chat.postMessage" and r.params.get("text") == "slack-out",
                timeout=20,
            )
            assert posted.token == slack_world.bot_token  # relayed by the workspace's app

            def discord_said(text: str) -> list[dict[str, Any]]:
                return [m for m in dfake.messages(dworld.general) if m["content"] == text]

            await eventually(lambda: bool(discord_said("discord-out")), timeout=20)
            [out] = discord_said("discord-out")
            assert out.get("webhook_id")  # relayed through the channel's webhook

            # Each network's ghosts in its own namespace.
            ghosts = {
                "irc": irc_ghost(bob.nick),
                "xmpp": xmpp_ghost(f"{muc}/Dave"),
                "slack": slack_world.ghost(slack_world.bob),
                "discord": dworld.ghost(dworld.bob),
            }
            assert slack_in["sender"] == ghosts["slack"]
            assert discord_in["sender"] == ghosts["discord"]
            for net, mxid in ghosts.items():
                localpart = mxid[1:].split(":", 1)[0]
                owners = [
                    n
                    for n in ("irc", "xmpp", "slack", "discord")
                    if bridge.connectors[n].ghost_remote_id(localpart) is not None
                ]
                assert owners == [net], (mxid, owners)

            # Nothing crossed networks: each room holds its own network's messages only, and
            # each network heard only what was said in its own portal.
            said = {
                irc_room: {"m irc-in", "m irc-out"},
                xmpp_room: {"m xmpp-in", "m xmpp-out"},
                slack_room: {"first words", "slack-in", "slack-out"},
                discord_room: {"discord first", "discord-in", "discord-out"},
            }
            everything = set().union(*said.values())
            for room, own in said.items():
                bodies = {
                    e["content"].get("body")
                    for e in alice.history(room)
                    if e.get("type") == "m.room.message"
                }
                assert bodies & everything == own, (room, bodies)
            posted_texts = {
                r.params.get("text") for r in fake.requests if r.method == "chat.postMessage"
            }
            assert posted_texts & everything == {"slack-out"}
            irc_heard = {m.trailing for m in bob.history if privmsg_from(puppet)(m)}
            assert irc_heard & everything == {"m irc-out"}
            assert set(dave.bodies(muc)) & everything == {"m xmpp-in", "m xmpp-out"}
            discord_texts = {m["content"] for m in dfake.messages(dworld.general)}
            assert discord_texts & everything == {"discord first", "discord-in", "discord-out"}
            # The bridge asked Discord to post nothing but the one Discord portal's message.
            discord_posts = {
                r.json.get("content")
                for r in dfake.requests
                if r.method == "POST" and isinstance(r.json, dict) and "content" in r.json
            }
            assert discord_posts & everything == {"discord-out"}, discord_posts
            portals = (
                (irc_room, "irc"),
                (xmpp_room, "xmpp"),
                (slack_room, "slack"),
                (discord_room, "discord"),
            )
            for room, net in portals:
                for e in alice.history(room):
                    if e.get("type") == "m.room.message" and e["sender"] != alice.user_id:
                        row = await bridge.store.message_by_event(e["event_id"])
                        assert row is not None and row.network == net, (net, e)

            # The registration generated for this config claims every network's ghosts and
            # aliases, each by its own regex.
            reg = build_registration(bridge.config, discover_connectors())
            users = [n["regex"] for n in reg["namespaces"]["users"]]
            aliases = [n["regex"] for n in reg["namespaces"]["aliases"]]
            for mxid in ghosts.values():
                assert len([r for r in users if re.match(r, mxid)]) == 1, mxid
            for alias in (irc_alias(channel), xmpp_alias(muc)):
                assert any(re.match(r, alias) for r in aliases), alias
            assert {"irc", "xmpp", "slack", "discord"} <= set(reg["protocols"])
            assert any("_discord_" in r for r in users), users
    finally:
        await bob.close()
