"""Who a mention names, both ways (bridges/discord/names.py): a personal login's Discord
account is its Matrix user (double puppeting), anyone else their ghost. (End to end, a
personal login cannot connect to the fake yet: discord.py asks for the application of a
user token, which the fake refuses; the mentions of ghosts are tested end to end in
test_e2e_formatting.py.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bridges.discord.names import InboundNames, OutboundNames, matrix_user_of

pytestmark = pytest.mark.engine_independent


def login(kind: str, discord_id: str, mxid: str, dead: bool = False) -> Any:
    return SimpleNamespace(
        is_bot=kind == "bot",
        dead=dead,
        meta=SimpleNamespace(user_id=discord_id),
        login=SimpleNamespace(user_mxid=mxid),
        gateway=None,
        channel=lambda _id: None,
    )


class Connector:
    def __init__(self, *clients: Any) -> None:
        self.clients = {str(n): c for n, c in enumerate(clients)}
        self.bridge = SimpleNamespace(ghost_mxid=lambda rid: f"@_discord_{rid}:example.org")

    def ghost_remote_id(self, localpart: str) -> str | None:
        return localpart.removeprefix("_discord_") if localpart.startswith("_discord_") else None


def test_a_personal_account_is_its_matrix_user_and_back() -> None:
    bot = login("bot", "10", "@admin:example.org")
    dana = login("user", "20", "@dana:example.org")
    gone = login("user", "30", "@gone:example.org", dead=True)
    conn: Any = Connector(bot, dana, gone)
    assert matrix_user_of(conn, 20) == "@dana:example.org"
    assert matrix_user_of(conn, "10") is None  # a bot speaks for no one
    assert matrix_user_of(conn, "30") is None  # a dead login neither
    message = SimpleNamespace(mentions=[SimpleNamespace(id=20, display_name="Dana D")], guild=None)
    names = InboundNames(conn, dana, message)
    assert names.user("20") is not None and names.user("20").mxid == "@dana:example.org"
    assert names.user("20").name == "Dana D"
    assert names.user("40").mxid == "@_discord_40:example.org"
    out = OutboundNames(conn)
    assert out.ghost_user_id("@dana:example.org") == "20"
    assert out.ghost_user_id("@_discord_40:example.org") == "40"
    assert out.ghost_user_id("@_discord_40:elsewhere.org") is None  # not our ghost
    assert out.ghost_user_id("@admin:example.org") is None


def test_room_version_12_ids_without_a_server_are_channel_links_both_ways() -> None:
    from bridges.discord.html_to_markdown import matrix_to_discord
    from bridges.discord.markdown import DiscordChannel, NameTable, discord_to_matrix

    room = "!Abc-123_xyz"  # room version 12: no server part
    names = NameTable(channels={"1": DiscordChannel(room, "general")}, rooms={room: "1"})
    assert discord_to_matrix("in <#1>", names).html == (
        f'in <a href="https://matrix.to/#/{room}">#general</a>'
    )
    html = f'see <a href="https://matrix.to/#/{room}">#general</a>'
    assert matrix_to_discord("see #general", html, names).text == "see <#1>"
