"""bridgekit.contract.html_lists: nested Matrix lists from items with levels."""

from __future__ import annotations

import pytest

from bridgekit.contract.html_lists import ListItem, render_lists

pytestmark = pytest.mark.engine_independent


def test_flat_and_numbered_lists() -> None:
    assert render_lists([ListItem("a"), ListItem("b")]) == "<ul><li>a</li><li>b</li></ul>"
    assert render_lists([ListItem("a", ordered=True, start=3), ListItem("b", ordered=True)]) == (
        '<ol start="3"><li>a</li><li>b</li></ol>'
    )


def test_nesting_and_a_level_never_jumps() -> None:
    items = [ListItem("a"), ListItem("b", 5), ListItem("c", 2), ListItem("d")]
    assert render_lists(items) == (
        "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>"
    )


def test_a_change_of_kind_starts_a_new_list() -> None:
    items = [ListItem("a"), ListItem("b", ordered=True)]
    assert render_lists(items) == "<ul><li>a</li></ul><ol><li>b</li></ol>"


def test_no_items() -> None:
    assert render_lists([]) == ""
