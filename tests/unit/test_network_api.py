"""The BridgeAPI a connector gets is bound to its network: with several networks loaded, a
remote id is looked up in the asking connector's network, never guessed, and a login or event
of another network is refused. (End to end: tests/test_e2e_multinetwork.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bridgekit.bridge import Bridge, discover_connectors
from bridgekit.config import Config
from bridgekit.contract.connector import BridgeStateEvent, LoginInfo, MediaError
from bridgekit.contract.events import (
    EventSender,
    MessageContent,
    PortalKey,
    RemoteMessage,
    RemoteUserID,
)
from bridgekit.network_api import NetworkBridge
from bridgekit.testing.media_servers import media_servers
from tests.conftest import SERVER_NAME, BridgeEnv

IRC = {"enabled": True, "servers": {"local": {"host": "127.0.0.1", "port": 6667}}}


@pytest.fixture
def bridge(tmp_path: Path) -> Bridge:
    """A bridge (not started) with the fake network and IRC loaded, as ``start`` loads them."""
    networks = {"fake": {"enabled": True}, "irc": IRC}
    env = BridgeEnv(tmp_path)
    config = Config.from_dict(env.config_dict(f"sqlite:///{tmp_path}/b.db", networks=networks))
    bridge = Bridge(config)
    for name, section in config.enabled_networks().items():
        bridge.connectors[name] = discover_connectors()[name](
            NetworkBridge(bridge.network_services, name), section
        )
    return bridge


def test_a_ghost_is_looked_up_in_the_asking_network(bridge: Bridge) -> None:
    irc, fake = bridge.connectors["irc"].bridge, bridge.connectors["fake"].bridge
    assert irc.network == "irc" and fake.network == "fake"
    # Was KeyError(''): the runtime could not tell which of the two networks asked.
    assert irc.ghost_mxid(RemoteUserID("local/carol")) == f"@_irc_local_carol:{SERVER_NAME}"
    assert fake.ghost_mxid(RemoteUserID("carol")) == f"@_fake_carol:{SERVER_NAME}"
    with pytest.raises(TypeError):
        bridge.ghost_mxid("carol")  # type: ignore[call-arg]  # the runtime names the network


async def test_a_login_or_event_of_another_network_is_refused(bridge: Bridge) -> None:
    login = LoginInfo("l1", f"@alice:{SERVER_NAME}", "fake", "alice")
    bridge.clients[login.id] = await bridge.connectors["fake"].load_login(login)
    irc = bridge.connectors["irc"].bridge
    event = RemoteMessage(
        PortalKey("#chan"), EventSender("bob"), id="m1", content=MessageContent("hi")
    )
    with pytest.raises(ValueError, match="fake login, not irc"):
        irc.report_state(login.id, BridgeStateEvent.CONNECTED)
    with pytest.raises(ValueError, match="fake login, not irc"):
        irc.queue_remote_event_soon(login.id, event)
    with pytest.raises(ValueError, match="fake login, not irc"):
        await irc.invite_to_portal(login.id, PortalKey("#chan"))
    with pytest.raises(ValueError, match="irc connector queued a xmpp event"):
        event.network = "xmpp"
        irc.queue_remote_event_soon(None, event)
    assert not bridge.outbox_writer.pending  # nothing of it was queued


def test_an_event_without_network_or_login_is_not_guessed(bridge: Bridge) -> None:
    event = RemoteMessage(PortalKey("#chan"), id="m1", content=MessageContent("hi"))
    with pytest.raises(ValueError, match="needs its network"):
        bridge._network_of_event(None, event)
    bridge.connectors["irc"].bridge._own_event(None, event)
    assert event.network == "irc" and bridge._network_of_event(None, event) == "irc"


async def test_fetch_media_goes_through_the_runtime_guard(bridge: Bridge) -> None:
    """A connector's fetch uses the bridge's guarded fetcher: loopback is refused unless
    ``media.allow`` names it, whatever credentials the connector sends."""
    api = bridge.connectors["fake"].bridge
    async with media_servers() as s:
        try:
            with pytest.raises(MediaError, match="not public"):
                await api.fetch_media(f"{s.good}/cat.png", headers={"Authorization": "Bearer x"})
        finally:
            await bridge.fetcher.close()
    with pytest.raises(MediaError, match="not a Matrix media URI"):
        await api.download_media("https://example.org/x.png", 100)
