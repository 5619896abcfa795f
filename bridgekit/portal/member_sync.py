"""A chat's member list applied to its portal room: ghosts join, and when the list is
complete (:attr:`~bridgekit.contract.events.ChatInfo.members_complete`) the ghosts no longer listed
leave; the members' power levels go into the room's ``m.room.power_levels`` in one event.

Only ghosts of the portal's own network are ever removed or have their power changed: real
Matrix users (double-puppeted or not), the bridge bot and other networks' ghosts are someone
else's to manage. A complete list is the network saying "these and no others", which is what
brings a room back in line after an outage (an IRC nick that quit while the bridge was down
leaves once NAMES is seen again); a partial list (one member's change) only adds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..contract.events import ChatInfo, ChatMember
from ..contract.ids import localpart_of, server_of
from ..matrix.client import with_retries
from ..objects.portal import Portal

if TYPE_CHECKING:
    from ..contract.connector import NetworkClient, NetworkConnector
    from ..matrix.client import MatrixClient
    from .puppets import Puppets

log = logging.getLogger("bridgekit.portal.member_sync")


def stale_ghosts(
    joined: Iterable[str], listed: set[str], is_ours: Callable[[str], bool]
) -> list[str]:
    """The joined users that are ghosts of this network but not in the complete list."""
    return [mxid for mxid in joined if mxid not in listed and is_ours(mxid)]


def merged_user_levels(
    users: Mapping[str, int],
    levels: Mapping[str, int],
    *,
    complete: bool,
    is_ours: Callable[[str], bool],
    users_default: int = 0,
    ceiling: int | None = None,
) -> dict[str, int] | None:
    """The room's ``users`` power map with the listed ghosts' ``levels`` applied, or None if
    nothing changes. A listed ghost at ``users_default`` (0) loses its entry, as does, for a
    complete list, every ghost of this network not listed. Entries that are not ours (Matrix
    users, the bot, other networks' ghosts) are kept as they are, and so is any level at or
    above ``ceiling`` (the bot's own: the homeserver refuses changes to those, and refuses
    raising anyone above it, so levels are capped just below)."""
    out = dict(users)

    def settable(mxid: str) -> bool:
        return ceiling is None or out.get(mxid, users_default) < ceiling

    for mxid, level in levels.items():
        if not is_ours(mxid) or not settable(mxid):
            continue
        if ceiling is not None and level >= ceiling:
            level = ceiling - 1
        if level == users_default:
            out.pop(mxid, None)
        else:
            out[mxid] = level
    if complete:
        for mxid in list(out):
            if mxid not in levels and is_ours(mxid) and settable(mxid):
                del out[mxid]
    return None if out == dict(users) else out


class MemberSync:
    """Applies :class:`ChatInfo` member lists to portal rooms (ghosts joined through
    :class:`~bridgekit.portal.puppets.Puppets`)."""

    def __init__(
        self,
        *,
        matrix: MatrixClient,
        puppets: Puppets,
        connectors: Mapping[str, NetworkConnector],
        bot_mxid: str,
        domain: str,
        ghost_mxid: Callable[[str, str], str],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.matrix = matrix
        self.puppets = puppets
        self.connectors = connectors  # the live map of enabled connectors
        self.bot_mxid, self.domain = bot_mxid, domain
        self.ghost_mxid = ghost_mxid
        self._spawn = spawn  # a background task the bridge cancels at stop
        #: Per portal, how many complete lists were applied: a drip-feed of joins from an
        #: older list stops when a newer complete list arrives (it may no longer hold them).
        self._generation: dict[tuple[str, str], int] = {}
        #: Per portal with a drip-feed running: the members that left since it began (their
        #: leave was handled in the portal's order), which it must not join again; and how
        #: many drip-feeds run (the set goes with the last one).
        self._departed: dict[tuple[str, str], set[str]] = {}
        self._drips: dict[tuple[str, str], int] = {}

    def is_ghost_of(self, network: str) -> Callable[[str], bool]:
        """Whether an MXID is a ghost of ``network`` (never the bot, never a Matrix user)."""
        connector = self.connectors.get(network)
        bot, domain = self.bot_mxid, self.domain

        def check(mxid: str) -> bool:
            if connector is None or mxid == bot or server_of(mxid) != domain:
                return False
            remote = connector.ghost_remote_id(localpart_of(mxid))
            return remote is not None and self.ghost_mxid(remote, network) == mxid

        return check

    async def apply(self, portal: Portal, info: ChatInfo, client: NetworkClient | None) -> None:
        """Remove the stale ghosts (complete lists) and set power levels now, in the portal's
        event order, then join the listed ghosts in the background (drip-fed: a channel of
        thousands must not hold up the portal's events nor flood the homeserver)."""
        members = [m for m in info.members if not m.is_me]
        if not members and not info.members_complete:
            return
        assert portal.mxid
        listed: dict[str, ChatMember] = {}
        for m in members:
            try:
                listed[self.ghost_mxid(m.remote_id, portal.network)] = m
            except Exception as e:  # a malformed id from the network: not a ghost we can keep
                log.warning("Member %r of %s ignored: %s", m.remote_id, portal.key, e)
        members = list(listed.values())
        is_ours = self.is_ghost_of(portal.network)
        key = (portal.network, str(portal.key))
        if (departed := self._departed.get(key)) is not None:
            departed.difference_update(m.remote_id for m in members)  # listed again: back
        if info.members_complete:
            self._generation[key] = generation = self._generation.get(key, 0) + 1
            try:
                await self._remove_stale(portal, set(listed), is_ours)
            except Exception:
                log.exception("Could not remove departed ghosts from %s", portal.mxid)
        else:
            generation = self._generation.get(key, 0)
        try:
            await self._set_levels(
                portal,
                {mxid: m.power_level for mxid, m in listed.items()},
                info.members_complete,
                is_ours,
            )
        except Exception:
            log.exception("Could not set the power levels of %s", portal.mxid)
        self._drips[key] = self._drips.get(key, 0) + 1
        self._departed.setdefault(key, set())
        self._spawn(self._join(portal, members, client, key, generation))

    def departed(self, portal: Portal, remote_id: str, left: bool = True) -> None:
        """A member left (``left``) or joined, as the portal's events say: a drip-feed of an
        older list that still holds it must not join it again (or need not skip it)."""
        departed = self._departed.get((portal.network, str(portal.key)))
        if departed is not None:
            (departed.add if left else departed.discard)(remote_id)

    async def _join(
        self,
        portal: Portal,
        members: list[ChatMember],
        client: NetworkClient | None,
        key: tuple[str, str],
        generation: int,
    ) -> None:
        departed = self._departed[key]
        try:
            for member in members:
                if self._generation.get(key, 0) != generation:
                    return  # a newer complete list took over
                if member.remote_id in departed:
                    continue  # left since the list was made
                try:
                    intent = await self.puppets.ghost_intent(
                        portal.network, member.remote_id, client, portal, name=member.name
                    )
                    if member.remote_id in departed:  # its leave was handled while it joined
                        assert portal.mxid
                        await intent.leave_room(portal.mxid, reason="no longer in the chat")
                except Exception:
                    log.exception("Could not add %s to %s", member.remote_id, portal.mxid)
        finally:
            self._drips[key] -= 1
            if not self._drips[key]:
                del self._drips[key], self._departed[key]

    async def _remove_stale(
        self, portal: Portal, listed: set[str], is_ours: Callable[[str], bool]
    ) -> None:
        bot = self.matrix.bot
        assert bot is not None and portal.mxid
        joined = await with_retries(
            lambda: bot.get_joined_members(portal.mxid), what="joined members"
        )
        for mxid in stale_ghosts(joined, listed, is_ours):
            intent = self.matrix.intent(mxid)
            try:
                await with_retries(
                    lambda intent=intent: intent.leave_room(
                        portal.mxid, reason="no longer in the chat"
                    ),
                    what="leave",
                    max_attempts=5,
                )
                log.info("%s left %s: no longer in %s", mxid, portal.mxid, portal.key)
            except Exception as e:
                log.warning("Could not take %s out of %s: %s", mxid, portal.mxid, e)

    async def set_level(self, portal: Portal, remote_id: str, level: int) -> None:
        """One ghost's power changed on the network (``RemoteMembership``), same rules."""
        mxid = self.ghost_mxid(remote_id, portal.network)
        await self._set_levels(portal, {mxid: level}, False, self.is_ghost_of(portal.network))

    async def _set_levels(
        self,
        portal: Portal,
        levels: dict[str, int],
        complete: bool,
        is_ours: Callable[[str], bool],
    ) -> None:
        """One ``m.room.power_levels`` event for the whole list (none if nothing changes)."""
        bot = self.matrix.bot
        assert bot is not None and portal.mxid
        pls = await with_retries(lambda: bot.get_power_levels(portal.mxid), what="power levels")
        users = {str(k): int(v) for k, v in pls.users.items()}
        bot_level = users.get(self.bot_mxid)  # absent: the creator of a v12 room
        new = merged_user_levels(
            users,
            levels,
            complete=complete,
            is_ours=is_ours,
            users_default=pls.users_default,
            ceiling=bot_level,
        )
        if new is None:
            return
        pls.users = new  # type: ignore[assignment]
        await with_retries(
            lambda: bot.set_power_levels(portal.mxid, pls), what="power levels", max_attempts=5
        )
        log.info("Power levels of %s follow its %d listed members", portal.mxid, len(levels))
