"""Typed connector metadata end to end: a connector's portal, ghost and login state lives on the
rows the bridge made for real Matrix rooms and users, survives a restart, stays its network's,
and a row that cannot be decoded is logged and read as the default while the bridge runs on.
Key/value keys are each network's own."""

from __future__ import annotations

import logging

import pytest

from bridgekit.contract.events import PortalKey, RemoteUserID
from bridgekit.network_api import NetworkBridge
from bridgekit.testing.fake import FakeMeta
from tests.conftest import BridgeEnv
from tests.helpers import fake, login, open_portal


async def test_metadata_of_real_rows_survives_a_restart(
    make_bridge, bridge_env: BridgeEnv, uid, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = await make_bridge()
    alice = await bridge_env.synapse.register_user(uid("alice"))
    async with alice:
        client = await login(bridge, alice, uid("a"))
        chat, bob = uid("chat"), uid("bob")
        fake(bridge).network.add_chat(chat, members=[client.login.remote_id, bob])
        await open_portal(bridge, alice, client, chat, first_from=bob)
        portal, login_id = PortalKey(chat), client.login.id

        api = fake(bridge).bridge
        assert await api.portal_metadata(portal) == FakeMeta()  # never written: the default
        await api.set_portal_metadata(portal, FakeMeta("portal", ["x"]))
        await api.set_ghost_metadata(RemoteUserID(bob), FakeMeta("ghost"))
        await api.set_login_metadata(login_id, FakeMeta("login", ["#a", "#b"]))
        with pytest.raises(TypeError, match="must be a FakeMeta"):
            await api.set_login_metadata(login_id, {"note": "a dict"})
        with pytest.raises(LookupError):  # metadata belongs to a stored row
            await api.set_portal_metadata(PortalKey(uid("nochat")), FakeMeta())
        # Another network never sees the fake network's rows.
        other = NetworkBridge(bridge.network_services, "other")
        with pytest.raises(TypeError, match="declares no portal_metadata_type"):
            await other.portal_metadata(portal)

        # Key/value keys are per network: the same key of two networks are two values.
        await api.set_kv("shared-key", "fake's")
        await other.set_kv("shared-key", "other's")
        assert await api.get_kv("shared-key") == "fake's"
        assert await bridge.store.get_kv("net:fake:shared-key") == "fake's"

        await make_bridge.stop(bridge)
        bridge = await make_bridge()
        api = fake(bridge).bridge
        assert await api.portal_metadata(portal) == FakeMeta("portal", ["x"])
        assert await api.ghost_metadata(RemoteUserID(bob)) == FakeMeta("ghost")
        assert await api.login_metadata(login_id) == FakeMeta("login", ["#a", "#b"])
        assert await api.get_kv("shared-key") == "fake's"

        # A row written wrong (by hand, or a buggy older connector) is logged and read as the
        # default after the next start; the login it belongs to still connects.
        await bridge.store.db.execute(
            "UPDATE user_login SET net_metadata='{\"note\": 42}' WHERE id=$1", login_id
        )
        await make_bridge.stop(bridge)
        with caplog.at_level(logging.ERROR, "bridgekit.database.net_metadata"):
            bridge = await make_bridge()
            assert await fake(bridge).bridge.login_metadata(login_id) == FakeMeta()
        assert f"fake login {login_id}: stored FakeMeta cannot be decoded" in caplog.text
        assert login_id in bridge.clients
