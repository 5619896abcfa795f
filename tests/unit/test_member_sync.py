"""The rules of member sync: who leaves after a complete list, and the one power-levels map
it writes (edge cases beside tests/test_e2e_member_sync.py and the IRC end-to-end test)."""

from __future__ import annotations

from bridgekit.portal.member_sync import merged_user_levels, stale_ghosts

BOT = "@bot:hs"


def ours(mxid: str) -> bool:
    """Ghosts of this network are @_irc_*:hs; the bot, users and @_xmpp_* are not ours."""
    return mxid.startswith("@_irc_") and mxid.endswith(":hs")


def test_only_unlisted_ghosts_of_this_network_are_stale() -> None:
    joined = ["@_irc_a:hs", "@_irc_b:hs", "@alice:hs", BOT, "@_xmpp_c:hs", "@_irc_d:other"]
    assert stale_ghosts(joined, {"@_irc_a:hs"}, ours) == ["@_irc_b:hs"]


def test_listed_levels_are_set_and_zero_removes_the_entry() -> None:
    users = {BOT: 100, "@alice:hs": 50, "@_irc_a:hs": 50}
    new = merged_user_levels(
        users, {"@_irc_a:hs": 0, "@_irc_b:hs": 1}, complete=False, is_ours=ours, ceiling=100
    )
    assert new == {BOT: 100, "@alice:hs": 50, "@_irc_b:hs": 1}


def test_partial_list_keeps_unlisted_ghosts_complete_list_drops_them() -> None:
    users = {BOT: 100, "@_irc_a:hs": 50, "@_xmpp_x:hs": 50, "@alice:hs": 10}
    kept = merged_user_levels(users, {}, complete=False, is_ours=ours, ceiling=100)
    assert kept is None  # nothing changes: no event
    dropped = merged_user_levels(users, {}, complete=True, is_ours=ours, ceiling=100)
    assert dropped == {BOT: 100, "@_xmpp_x:hs": 50, "@alice:hs": 10}


def test_levels_stay_below_the_bot_and_higher_entries_are_left_alone() -> None:
    users = {BOT: 50, "@_irc_high:hs": 50}
    new = merged_user_levels(
        users, {"@_irc_a:hs": 100, "@_irc_high:hs": 0}, complete=True, is_ours=ours, ceiling=50
    )
    assert new == {BOT: 50, "@_irc_high:hs": 50, "@_irc_a:hs": 49}


def test_no_ceiling_for_a_v12_creator_and_a_nonzero_default() -> None:
    new = merged_user_levels(
        {}, {"@_irc_a:hs": 100, "@_irc_b:hs": 5}, complete=True, is_ours=ours, users_default=5
    )
    assert new == {"@_irc_a:hs": 100}


def test_a_matrix_user_listed_by_mistake_is_not_touched() -> None:
    users = {"@alice:hs": 100}
    assert merged_user_levels(users, {"@alice:hs": 0}, complete=True, is_ours=ours) is None
