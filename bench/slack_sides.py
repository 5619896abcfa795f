"""The parties of bench/slack.py: the fake Slack (in this process) with a Slack user who posts
and reads like ``irc_sides.RawIrc`` does, the app login stored for the bridge, and the portal
rooms the Matrix user joins."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.harness is not an installed package
sys.path.insert(0, str(REPO / "bench"))

from bridge_state import join_invites, store_login  # noqa: E402
from irc_sides import MARKER_RE, now  # noqa: E402

from tests.harness.slack_fake import FakeSlack  # noqa: E402


class BenchSlack(FakeSlack):
    """The fake Slack, telling the Slack user of every ``chat.postMessage`` as it answers it
    (the moment the bridge's request was read: the fake's side of "delivered")."""

    bob: SlackUser | None = None

    def _post_message(self, token: Any, params: dict[str, Any]) -> dict[str, Any]:
        result = super()._post_message(token, params)
        if self.bob is not None:
            self.bob.read(str(params.get("text") or ""))
        return result

    def prune(self) -> None:
        """Forget acknowledged envelopes and recorded requests between phases: the fake looks
        envelopes up by a linear scan per ack, which would slow this process down (the Matrix
        client and the fake share it) as a long run adds thousands."""
        self.envelopes = [e for e in self.envelopes if not e.acked]
        self.requests.clear()
        self.acks.clear()


class SlackUser:
    """A Slack user in the benchmark's channel, shaped like ``irc_sides.RawIrc`` so that
    ``irc_phases``' phases drive it: ``send`` posts a message, ``read`` records the markers of
    what the bridge posted (arrival times, order, the futures phases wait on)."""

    def __init__(self, fake: BenchSlack, user_id: str, channel_id: str) -> None:
        self.fake = fake
        self.user_id = user_id
        self.channel_id = channel_id
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.transport = None  # irc.py closes the IRC user's transport; nothing to close here
        fake.bob = self

    def send(self, _command: str, _target: str, text: str, channel: str | None = None) -> None:
        self.fake.post_user_message(channel or self.channel_id, self.user_id, text)

    def read(self, text: str) -> None:
        stamp = now()
        for m in MARKER_RE.finditer(text):
            if m.group(1) != "M":
                continue
            seq = int(m.group(2))
            self.order.append(seq)
            self.arrivals.setdefault(seq, stamp)
            fut = self.expect.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_result(stamp)


async def store_app_login(db_url: str, fake: FakeSlack, team: Any, mxid: str) -> str:
    """The workspace's app login of ``mxid``, stored the way ``login slack app`` stores it
    (the bridge loads it at start and opens Socket Mode). Returns its id."""
    from bridgekit.contract.connector import LoginInfo
    from bridges.slack.ids import user_rid
    from bridges.slack.state import SlackLoginMeta

    meta = SlackLoginMeta(
        kind="app",
        team_id=team.id,
        team_name=team.name,
        team_domain=team.domain,
        user_id=team.bot_user_id,
        bot_id=team.bot_id,
        bot_token=fake.bot_token(team.id),
        app_token=fake.app_token(),
    )
    remote = user_rid(team.id, team.bot_user_id)
    login = LoginInfo(
        id=f"slack-app-{remote}",
        user_mxid=mxid,
        network="slack",
        remote_id=remote,
        remote_name=f"{team.name} (app {team.bot_user_id})",
        metadata=dataclasses.asdict(meta),
    )
    return await store_login(db_url, login)


async def open_portals(
    fake: FakeSlack, user: Any, bob_id: str, channels: list[str], timeout: float = 300
) -> list[str]:
    """Bob speaks in each channel; the bridge makes its portal and invites ``user`` (the app
    login's owner), who joins. Returns the room ids in the order the invites came."""
    for channel in channels:
        fake.post_user_message(channel, bob_id, "first words")
    return await join_invites(user, len(channels), timeout)
