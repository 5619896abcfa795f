"""How ``start-chat irc`` reads what was typed: ``nick``, ``server/nick``, ``server nick``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bridges.irc.identifiers import _split


def test_a_nick_names_the_only_server_and_a_server_prefix_chooses_one() -> None:
    one = SimpleNamespace(servers={"libera": object()})
    assert _split(one, "bob") == ("libera", "bob")  # type: ignore[arg-type]
    two = SimpleNamespace(servers={"libera": object(), "oftc": object()})
    assert _split(two, "oftc/bob") == ("oftc", "bob")  # type: ignore[arg-type]
    assert _split(two, "oftc bob") == ("oftc", "bob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="which server"):
        _split(two, "bob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no IRC server 'efnet'"):
        _split(two, "efnet/bob")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one nick"):
        _split(two, "oftc bob carol")  # type: ignore[arg-type]
