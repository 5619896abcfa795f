"""Plumbing an existing Matrix room to an IRC channel with the runtime's `bridge` command."""

from __future__ import annotations

from bridgekit.contract.events import PortalKey
from bridges.irc.names import casefold
from tests.helpers import notice_says, room_with_bot
from tests.irc.e2e import SERVER, body_is, irc_user, is_puppet_join, privmsg_from, start_bridge


async def test_bridge_accepts_any_spelling_of_a_channel_and_plumbs_one_portal(
    make_bridge, ircd, bridge_env, uid
):
    bridge = await start_bridge(make_bridge, ircd)
    alice = await bridge_env.synapse.register_user(uid("alice"))
    channel = "#Mixed" + uid("Case")
    bob = await irc_user(ircd, uid("bob"), channel)
    async with alice:
        try:
            room_id = await room_with_bot(bridge, alice, name="Our room")
            await alice.send_text(room_id, f"!bridge irc {SERVER} {channel}")
            await alice.wait_for_event(room_id, notice_says("Bridged this room"), 20)
            # The portal of the channel's folded name: the one IRC's lines and the alias use.
            portal = await bridge.store.get_portal(
                "irc", PortalKey(f"{SERVER}/{casefold(channel)}")
            )
            assert portal is not None and portal.mxid == room_id
            # Another spelling names the same channel, so the same portal.
            other = await room_with_bot(bridge, alice)
            await alice.send_text(other, f"!bridge irc {SERVER}/{channel.upper()}")
            await alice.wait_for_event(other, notice_says("already bridged"), 20)
            # Malformed names are refused, with the reason.
            await alice.send_text(other, f"!bridge irc {SERVER} #a,b")
            await alice.wait_for_event(other, notice_says("not a valid irc chat"), 20)
            await alice.send_text(other, f"!bridge irc nowhere {channel}")
            await alice.wait_for_event(other, notice_says("unknown server"), 20)
            assert await bridge.store.get_portal("irc", PortalKey(f"{SERVER}/#a,b")) is None
            # The plumbed room talks to the channel.
            await alice.send_text(room_id, "hello from the plumbed room")
            puppet = (await bob.wait_for(is_puppet_join(channel), 20)).nick
            assert puppet
            await bob.wait_for(privmsg_from(puppet, "hello from the plumbed room"), 15)
            await bob.privmsg(channel, "hello back")
            await alice.wait_for_event(room_id, body_is("hello back"), 15)
        finally:
            await bob.close()
