"""heisenbridge with many Matrix users: RSS per connected user, and CPU per IRC line when
several of them are in the channel (bench/heisenbridge.py ``--users``, ``--join-users``).

Each extra user is set up as a person would: the owner allows ``@hbuser*`` once (``ADDMASK``);
the user opens a direct chat with the bot (its control room), sends ``OPEN bench``, joins the
network room it is invited to, sends ``NICK`` and ``CONNECT``, and, for the first
``--join-users`` of them, ``JOIN #bench`` and joins the channel room. Each user's Matrix client
syncs only while it is being set up.

RSS per user is measured as bench/irc.py measures RSS per connection: a fresh process with the
owner alone (restarted, reconnected) against a fresh process with the owner and the N users
(restarted; heisenbridge reconnects one network per second at start-up), each once RSS stops
moving. heisenbridge keeps its state in Synapse account data, so a restart loads it all back.

heisenbridge is a bouncer: a user in a channel has a channel room of their own, so an IRC line
is sent to Matrix once per bridged user in the channel. The owner's room is the one measured.
"""

from __future__ import annotations

import asyncio
from typing import Any

import irc_phases
import irc_sides

now = irc_sides.now
USER_PREFIX = "hbuser"
#: Users being set up at once (each has a syncing client meanwhile).
SETUP_CONCURRENCY = 6


async def allow_users(owner: Any, control: str, bot: str, domain: str, command: Any) -> None:
    """The owner's ``ADDMASK``: only allowed users may talk to heisenbridge's bot."""
    await command(owner, control, f"ADDMASK @{USER_PREFIX}*:{domain}", "Mask added", bot)


async def add_user(
    env: Any, i: int, bot: str, network: str, join: bool, command: Any, invited_room: Any
) -> None:
    """One user: control room, OPEN, network room, NICK, CONNECT, maybe JOIN."""
    client = await env.synapse.register_user(f"{USER_PREFIX}{i}")
    nick = f"hbu{i}"
    try:
        control = await client.create_room(invite=[bot], is_direct=True)
        await client.wait_for_event(control, lambda e: e.get("sender") == bot, timeout=120)
        await command(client, control, f"OPEN {network}", "invited", bot, timeout=120)
        net_room = await invited_room(client, bot, timeout=120)
        await client.wait_for_event(net_room, lambda e: e.get("sender") == bot, timeout=120)
        await command(client, net_room, f"NICK {nick}", "Nickname set", bot, timeout=120)
        await command(client, net_room, "CONNECT", r"Welcome to", bot, timeout=180)
        if join:
            await client.send_text(net_room, f"JOIN {irc_sides.CHANNEL}")
            channel = await invited_room(client, bot, timeout=120)
            await env.bob.wait_for(lambda m: m.command == "JOIN" and m.nick == nick, 120)
            del channel
    finally:
        await client.close()


async def add_users(
    env: Any, n: int, k: int, bot: str, network: str, command: Any, invited_room: Any
) -> float:
    """Set up N users (the first K also in the channel); seconds taken."""
    t0 = now()
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await add_user(env, i, bot, network, i < k, command, invited_room)

    await asyncio.gather(*(one(i) for i in range(n)))
    return now() - t0


async def restart_and_reconnect(env: Any, users: int, timeout: float) -> float:
    """Restart heisenbridge; wait until ``users`` IRC users are on the server again."""
    env.bridge.stop()
    t0 = now()
    env.bridge.start()
    await env.bridge.wait_ready(timeout=300)
    deadline = now() + timeout
    count = 0
    while now() < deadline:
        count = await env.bob.user_count()
        if count >= users:
            return now() - t0
        await asyncio.sleep(1)
    raise TimeoutError(f"{count} of {users} IRC users back after a restart of heisenbridge")


async def users_phase(
    env: Any, n: int, k: int, bot: str, network: str, command: Any, invited_room: Any
) -> dict[str, Any]:
    """RSS per connected user from two fresh processes; the set-up itself is timed."""
    out: dict[str, Any] = {"users": n, "in_channel": k}
    base_users = await env.bob.user_count()  # bob and the owner's connection
    out["baseline_reconnect_s"] = round(await restart_and_reconnect(env, base_users, 60 + 5 * n), 1)
    await asyncio.sleep(3)
    rss0 = await irc_phases.settle_rss(env.bridge, 5.0)
    out["baseline_rss_mib"] = round(rss0 / 1024, 1)
    out["setup_s"] = round(await add_users(env, n, k, bot, network, command, invited_room), 1)
    out["rss_mib_after_setup"] = round(await irc_phases.settle_rss(env.bridge, 5.0) / 1024, 1)
    out["reconnect_s"] = round(await restart_and_reconnect(env, base_users + n, 60 + 5 * n), 1)
    await asyncio.sleep(3 + k)  # channel rejoins and their member sync
    rss_n = await irc_phases.settle_rss(env.bridge, 5.0)
    out["rss_mib"] = round(rss_n / 1024, 1)
    out["peak_rss_mib"] = round(irc_sides.proc_status(env.bridge.pid, "VmHWM") / 1024, 1)
    out["kib_per_user"] = round((rss_n - rss0) / n, 1)
    return out
