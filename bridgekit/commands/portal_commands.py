"""Built-in commands about portals: listing them, bridging a room, its relay, deleting it.

Who may change a room's bridge is the room's business: ``bridge``/``unbridge`` need room
admin power, ``set-relay`` and ``unset-relay`` moderator power (or being the room's current
relay), so a user with a login cannot take over or drop the relay others have set.
"""

from __future__ import annotations

import asyncio
import logging

from mautrix.errors import MatrixRequestError
from mautrix.types import EventType, Membership

from ..contract.commands import Command
from ..contract.connector import ChatIdParser
from ..contract.events import PortalKey
from ..objects.portal import Portal
from .runtime import RuntimeCommandEvent

log = logging.getLogger("bridgekit.commands.processor")

#: The power level of a room moderator: what setting a room's relay needs.
MODERATOR = 50
ADMIN = 100


async def cmd_list_portals(ce: RuntimeCommandEvent) -> None:
    """Admins see every portal; a user only those they belong to: a private chat of one of
    their logins, or a room they are joined to (a portal's room id and name are not for
    whoever asks, e.g. a secret channel's)."""
    portals = [p for p in await ce.runtime.store.all_portals() if p.mxid]
    if ce.level < 3:
        mine = {c.login.id for c in ce.runtime.logins.clients_of(ce.sender)}
        portals = await _belonging(ce, portals, mine)
    if not portals:
        await ce.reply("No portals.")
        return
    await ce.reply("\n".join(f"* {p.network} {p.key.id}: {p.name or ''} {p.mxid}" for p in portals))


async def _belonging(
    ce: RuntimeCommandEvent, portals: list[Portal], mine: set[str]
) -> list[Portal]:
    """The portals the sender is in, from the state cache (fed by every membership event the
    bridge receives). Only a room the cache knows nothing of (e.g. since a restart) costs a
    request: its joined members, which fills the cache for every later listing."""
    bot = ce.runtime.matrix.bot
    assert bot is not None
    cache = ce.runtime.matrix.state_store
    sem = asyncio.Semaphore(8)

    async def joined(portal: Portal) -> bool:
        if portal.key.receiver:
            return portal.key.receiver in mine
        cached = await cache.get_member(portal.mxid, ce.sender)
        if cached is not None:
            return cached.membership == Membership.JOIN
        if await cache.has_full_member_list(portal.mxid):
            return False
        async with sem:
            try:
                members = await bot.get_joined_members(portal.mxid)
            except MatrixRequestError:
                return False
        return ce.sender in members

    keep = await asyncio.gather(*(joined(p) for p in portals))
    return [p for p, k in zip(portals, keep, strict=True) if k]


async def _room_power(ce: RuntimeCommandEvent) -> int | None:
    """The sender's power level in the command's room; None (and a reply) if unreadable."""
    bot = ce.runtime.matrix.bot
    assert bot is not None
    try:
        pls = await bot.get_power_levels(ce.room_id)
        # Room v12 creators have unlimited power and are not listed in `users`.
        create = await bot.get_state_event(ce.room_id, EventType.ROOM_CREATE, format="event")
    except MatrixRequestError:
        await ce.reply("I cannot read this room's power levels: invite me first.")
        return None
    return int(pls.get_user_level(ce.sender, create))


async def _require_room_admin(ce: RuntimeCommandEvent) -> bool:
    if ce.level >= 3:
        return True
    power = await _room_power(ce)
    if power is None:
        return False
    if power < ADMIN:
        await ce.reply(f"Only room admins (power level {ADMIN}) can do that.")
        return False
    return True


async def cmd_bridge(ce: RuntimeCommandEvent) -> None:
    if ce.is_management or len(ce.args) < 2:
        await ce.reply("Usage (in the room to bridge): bridge <network> <remote chat id>")
        return
    if ce.portal is not None:
        await ce.reply("This room is already bridged. Use `unbridge` first.")
        return
    if not await _require_room_admin(ce):
        return
    network, remote_id = ce.args[0].lower(), " ".join(ce.args[1:])
    if network not in ce.runtime.connectors:
        await ce.reply(f"Unknown network `{network}`.")
        return
    connector = ce.runtime.connectors[network]
    if isinstance(connector, ChatIdParser):
        try:
            key = connector.parse_chat_id(remote_id)
        except ValueError as e:
            await ce.reply(f"`{remote_id}` is not a valid {network} chat: {e}")
            return
        remote_id = key.id
    else:
        key = PortalKey(remote_id)
    existing = await ce.runtime.store.get_portal(network, key)
    if existing and existing.mxid:
        await ce.reply(f"{remote_id} is already bridged to another room.")
        return
    login = next(iter(ce.runtime.logins.clients_of(ce.sender, network)), None)
    portal = await ce.runtime.rooms.get_or_create(
        network, key, login.login.id if login else None, room_id=ce.room_id
    )
    if portal is None:
        await ce.reply("Could not bridge this room.")
        return
    if login and not portal.relay_login:
        portal.relay_login = login.login.id
        await portal.save()
    await ce.reply(f"Bridged this room to {network} {remote_id}.")


async def cmd_unbridge(ce: RuntimeCommandEvent) -> None:
    if ce.portal is None:
        await ce.reply("This room is not bridged.")
        return
    if not await _require_room_admin(ce):
        return
    await ce.runtime.spaces.portal_removed(ce.portal)
    await ce.portal.delete()
    await ce.reply("This room is no longer bridged.")


async def _may_change_relay(ce: RuntimeCommandEvent, verb: str) -> bool:
    """Setting, replacing or unsetting a room's relay: bridge admins, room moderators, and
    the owner of the current relay login (found in the store: a login that is not connected
    now, or did not load, is still theirs and comes back at the next start)."""
    assert ce.portal is not None
    if ce.level >= 3:
        return True
    relay = ce.portal.relay_login
    if relay and any(login.id == relay for login in await ce.runtime.store.logins(ce.sender)):
        return True
    power = await _room_power(ce)
    if power is None:
        return False
    if power < MODERATOR:
        await ce.reply(
            f"Only room moderators (power level {MODERATOR}) or the current relay can "
            f"{verb} this room's relay."
        )
        return False
    return True


async def cmd_set_relay(ce: RuntimeCommandEvent) -> None:
    if ce.portal is None:
        await ce.reply("Use this in a bridged room.")
        return
    if not ce.runtime.settings.relay.enabled:
        await ce.reply("Relay mode is disabled in the bridge config.")
        return
    clients = [
        c
        for c in ce.runtime.logins.clients_of(ce.sender, ce.portal.network)
        if c.is_in_portal(ce.portal.key)
    ]
    if not clients:
        await ce.reply("You need a login in this room to relay through.")
        return
    if not await _may_change_relay(ce, "set"):
        return
    ce.portal.relay_login = clients[0].login.id
    await ce.portal.save()
    who = clients[0].login.remote_name or clients[0].login.remote_id
    await ce.reply(f"Messages from users without a login are now relayed through {who}.")


async def cmd_unset_relay(ce: RuntimeCommandEvent) -> None:
    if ce.portal is None or not ce.portal.relay_login:
        await ce.reply("This room has no relay.")
        return
    if not await _may_change_relay(ce, "unset"):
        return
    ce.portal.relay_login = None
    await ce.portal.save()
    await ce.reply("Relay mode is off in this room.")


async def cmd_delete_portal(ce: RuntimeCommandEvent) -> None:
    if ce.portal is None:
        await ce.reply("Use this in a bridged room.")
        return
    portal = ce.portal
    bot = ce.runtime.matrix.bot
    assert bot is not None and portal.mxid
    await ce.runtime.spaces.portal_removed(portal)
    await portal.delete()
    await ce.reply("Portal deleted; I am leaving this room.")
    try:
        if not portal.plumbed:
            members = await bot.get_joined_members(portal.mxid)
            for member in members:
                if ce.runtime.connector_for_ghost(member):
                    await ce.runtime.matrix.intent(member).leave_room(portal.mxid)
        await bot.leave_room(portal.mxid)
    except MatrixRequestError:
        log.warning("Could not clean up room %s", portal.mxid)


def portal_commands() -> list[Command]:
    return [
        Command("list-portals", cmd_list_portals, "List bridged rooms.", section="Portals"),
        Command(
            "bridge",
            cmd_bridge,
            "Bridge this room to a remote chat (room admins).",
            "<network> <remote id>",
            section="Portals",
        ),
        Command(
            "unbridge", cmd_unbridge, "Stop bridging this room (room admins).", section="Portals"
        ),
        Command(
            "set-relay",
            cmd_set_relay,
            "Relay users without a login through your login (room moderators).",
            section="Portals",
        ),
        Command(
            "unset-relay",
            cmd_unset_relay,
            "Stop relaying in this room (room moderators).",
            section="Portals",
        ),
        Command(
            "delete-portal",
            cmd_delete_portal,
            "Delete this portal and leave the room.",
            level=3,
            section="Admin",
        ),
    ]
