"""Edge cases of the guild structure's mapping: thread names from Matrix roots, roles ->
power levels."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from bridges.discord.roles import ADMIN_LEVEL, MODERATOR_LEVEL, level_of
from bridges.discord.threads import MAX_NAME, thread_name

pytestmark = pytest.mark.engine_independent


def test_thread_names_come_from_the_first_line_cut_to_discords_limit():
    assert thread_name("\n\n  Release   2.0 \nmore") == "Release 2.0"
    assert thread_name("") == "Thread"
    assert thread_name("   \n \t") == "Thread"
    long = thread_name("x" * 500)
    assert len(long) == MAX_NAME and long.endswith("…")


def _guild(roles: dict[int, int], owner: int = 1, gid: int = 100) -> SimpleNamespace:
    table = {rid: SimpleNamespace(permissions=discord.Permissions(p)) for rid, p in roles.items()}
    return SimpleNamespace(id=gid, owner_id=owner, get_role=table.get)


def test_levels_from_roles():
    admin = discord.Permissions(administrator=True).value
    kick = discord.Permissions(kick_members=True).value
    plain = discord.Permissions(send_messages=True, view_channel=True).value
    guild = _guild({100: kick, 2: admin, 3: kick, 4: plain})
    assert level_of(guild, 1, []) == ADMIN_LEVEL  # the owner
    assert level_of(guild, 7, [2]) == ADMIN_LEVEL
    assert level_of(guild, 7, [3, 4]) == MODERATOR_LEVEL
    assert level_of(guild, 7, [4]) == 0
    assert level_of(guild, 7, [100]) == 0  # @everyone's permissions raise nobody
    assert level_of(guild, 7, [999]) == 0  # a role not known (deleted meanwhile)
