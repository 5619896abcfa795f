"""What the log says when the bridge starts with IRC logins stored: each state once."""

from __future__ import annotations

import logging
import re
from typing import Any

from tests.harness.inspircd import InspIRCd
from tests.irc.e2e import channel_scene, is_puppet_join, start_bridge


def states(caplog: Any, state: str) -> dict[str, int]:
    """How many times each login was logged as ``state``."""
    counts: dict[str, int] = {}
    for record in caplog.records:
        match = re.match(rf"Login (\S+) is {state}\b", record.getMessage())
        if match:
            counts[match[1]] = counts.get(match[1], 0) + 1
    return counts


async def test_a_stored_login_is_logged_connecting_once_at_start(
    make_bridge: Any, ircd: InspIRCd, bridge_env: Any, uid: Any, caplog: Any
) -> None:
    async with channel_scene(make_bridge, ircd, bridge_env, uid) as scene:
        await make_bridge.stop(scene.bridge)
        caplog.clear()
        caplog.set_level(logging.INFO, logger="bridgekit")
        bridge = await start_bridge(make_bridge, ircd)
        await scene.bob.wait_for(is_puppet_join(scene.channel), 30)
        logins = set(bridge.clients)
        assert logins, "no login was loaded"
        connecting = states(caplog, "CONNECTING")
        assert connecting == dict.fromkeys(logins, 1), connecting
        assert set(states(caplog, "CONNECTED")) == logins
