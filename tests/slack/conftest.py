"""Fixtures of the Slack connector tests: a wire-level fake Slack (tests/harness/slack_fake),
the real slack-sdk pointed at it, the bridge, and the session's real Synapse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bridgekit.bridge import Bridge
from bridgekit.testing.matrix_client import MatrixTestClient
from bridges.slack.client import SlackClient
from bridges.slack.connector import SlackConnector
from bridges.slack.ids import user_rid
from bridges.slack.login import SlackLogin
from tests.conftest import SERVER_NAME, eventually
from tests.harness.slack_fake import FakeSlack


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # slack-sdk reads HTTP(S)_PROXY and ignores NO_PROXY: the fake is on loopback.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield


def ghost(team: str, user: str) -> str:
    """The Matrix id of a Slack user's ghost."""
    return f"@_slack_{user_rid(team, user)}:{SERVER_NAME}"


@dataclass
class SlackWorld:
    """One workspace ``Acme`` with its app installed, Slack users alice and bob, and
    ``#general`` (alice, bob and the bot)."""

    fake: FakeSlack
    team: Any
    alice: Any
    bob: Any
    general: Any

    @property
    def bot_token(self) -> str:
        return self.fake.bot_token(self.team.id)

    @property
    def app_token(self) -> str:
        return self.fake.app_token()

    def ghost(self, user: Any) -> str:
        return ghost(self.team.id, user.id)


@pytest.fixture
async def slack_fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def make_bridge(slack_fake: FakeSlack, make_bridge: Any) -> Any:
    """The session's bridge factory, set up after the fake Slack so that at teardown the
    bridges stop before the fake does (else work still in flight, such as a new portal's
    ``team.info``, spends seconds on slack-sdk's connection retries against nothing)."""
    return make_bridge


@pytest.fixture
async def slack_world(slack_fake: FakeSlack) -> SlackWorld:
    team = slack_fake.add_team("Acme", "acme")
    alice = slack_fake.add_user(team.id, "alice", real_name="Alice Liddell")
    bob = slack_fake.add_user(team.id, "bob", real_name="Bob Builder")
    general = slack_fake.add_conversation(team.id, "general", members=[alice.id, bob.id])
    return SlackWorld(slack_fake, team, alice, bob, general)


def slack_networks(fake: FakeSlack, **extra: Any) -> dict[str, Any]:
    """The fake network beside Slack: everything must hold with several connectors."""
    return {"fake": {"enabled": True}, "slack": {"api_url": fake.api_url, **extra}}


@pytest.fixture
async def slack_bridge(make_bridge: Any, slack_fake: FakeSlack) -> Bridge:
    return await make_bridge(
        networks=slack_networks(slack_fake), media={"allow": [f"127.0.0.1:{slack_fake.port}"]}
    )


@pytest.fixture
async def dp_bridge(make_bridge: Any, slack_fake: FakeSlack, bridge_env: Any) -> Bridge:
    """The bridge with double puppeting for the homeserver's users (the test Synapse has the
    double-puppet appservice registration)."""
    return await make_bridge(
        networks=slack_networks(slack_fake),
        media={"allow": [f"127.0.0.1:{slack_fake.port}"]},
        **{"double_puppet.secrets": {SERVER_NAME: f"as_token:{bridge_env.dp_token}"}},
    )


def connector(bridge: Bridge) -> SlackConnector:
    conn = bridge.connectors["slack"]
    assert isinstance(conn, SlackConnector)
    return conn


async def _complete(bridge: Bridge, mxid: str, flow: str, answers: list[dict[str, str]]) -> Any:
    process = SlackLogin(connector(bridge), mxid, flow)
    step = await process.start()
    for answer in answers:
        step = await process.submit(answer)
    assert step.complete is not None
    return step.complete


async def login_app(bridge: Bridge, user: MatrixTestClient, world: SlackWorld) -> SlackClient:
    """``user`` logs in the workspace's app (through the login flow's checks, not the
    management room) and its Socket Mode connection is up."""
    before = world.fake.connected_sockets
    info = await _complete(
        bridge,
        user.user_id,
        "app",
        [{"bot_token": world.bot_token}, {"app_token": world.app_token}],
    )
    await bridge.commands.get_or_create_user(user.user_id)
    client = await bridge.add_login(info)
    assert isinstance(client, SlackClient)
    await eventually(lambda: world.fake.connected_sockets > before, timeout=20)
    return client


async def login_user(
    bridge: Bridge, user: MatrixTestClient, world: SlackWorld, slack_user: Any
) -> SlackClient:
    """``user`` logs in as ``slack_user`` with a personal token."""
    info = await _complete(
        bridge, user.user_id, "user", [{"user_token": world.fake.user_token(slack_user.id)}]
    )
    await bridge.commands.get_or_create_user(user.user_id)
    client = await bridge.add_login(info)
    assert isinstance(client, SlackClient)
    await eventually(lambda: client.connected, timeout=20)
    return client


def body_is(text: str) -> Any:
    return lambda e: e.get("type") == "m.room.message" and e.get("content", {}).get("body") == text


async def open_channel(
    bridge: Bridge, world: SlackWorld, user: MatrixTestClient, channel: Any, speaker: Any
) -> str:
    """``speaker`` says something in ``channel``: its portal is made, ``user`` (the app login's
    owner) is invited and joins. Returns the room id."""
    world.fake.post_user_message(channel.id, speaker.id, "first words")
    # a new portal's room takes a few homeserver requests: slow when the machine is loaded
    room_id, _ = await user.wait_for_invite(timeout=45)
    await user.join(room_id)
    await user.wait_for_event(room_id, body_is("first words"))
    return room_id
