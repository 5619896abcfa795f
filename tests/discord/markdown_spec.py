"""Shared by the Discord formatting specifications: a name table for both directions and
:func:`assert_safe`, the check that Matrix HTML holds only what the converter may write,
written canonically (parsing and writing it again gives the same string)."""

from __future__ import annotations

import html as _html
import re
from html.parser import HTMLParser

from bridges.discord.markdown import DiscordChannel, DiscordUser, NameTable

NAMES = NameTable(
    users={
        "111": DiscordUser("@_discord_111:hs.test", "Alice"),
        "222": DiscordUser("@bob:hs.test", "Bob <the> & co"),
        "333": DiscordUser(None, "nomxid"),
        "444": DiscordUser('@x" onmouseover="y:hs', "Evil"),
    },
    channels={
        "10": DiscordChannel("#_discord_10:hs.test", "general"),
        "20": DiscordChannel("!room:hs.test", "random"),
        "30": DiscordChannel(None, "unbridged"),
        "40": DiscordChannel("javascript:alert(1)", "evil"),
    },
    roles={"5": "Mods & <Admins>"},
    emojis={"7": "mxc://hs.test/blob", "8": "mxc://hs.test/party", "9": 'mxc://x"><script>'},
    ghosts={"@_discord_111:hs.test": "111", "@bob:hs.test": "222", "@nodigits:hs.test": "x"},
    rooms={"#_discord_10:hs.test": "10", "!room:hs.test": "20"},
    emoji_ids={
        "mxc://hs.test/blob": ("blob", "7", False),
        "mxc://hs.test/party": ("party", "8", True),
    },
)
ALICE = '<a href="https://matrix.to/#/@_discord_111:hs.test">Alice</a>'

#: Tags Matrix may get from the converter, and the attributes each may carry.
ALLOWED: dict[str, set[str]] = {
    **{tag: set() for tag in "strong em u del code pre blockquote ul li br h1 h2 h3 sub".split()},
    "ol": {"start"},
    "a": {"href"},
    "span": {"data-mx-spoiler"},
    "img": {"data-mx-emoticon", "src", "alt", "title", "height"},
}
_VOID = {"br", "img"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, f"tag {tag}"
        allowed = ALLOWED[tag] | ({"class"} if tag == "code" else set())
        for name, value in attrs:
            assert name in allowed, f"{tag} {name}"
            if name == "href":
                assert re.match(r"https?://", value or ""), value
            if name == "src":
                assert re.fullmatch(r"mxc://[\w.\-:]+/[\w\-]+", value or ""), value
            if name == "class":
                assert re.fullmatch(r"language-[\w+\-.#]+", value or ""), value
            if name == "start":
                assert (value or "").isdigit()
        written = "".join(
            f" {name}" if value is None else f' {name}="{_html.escape(value, quote=True)}"'
            for name, value in attrs
        )
        self.out.append(f"<{tag}{written}>")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"mis-nested </{tag}> in {self.stack}"
        self.stack.pop()
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(_html.escape(data, quote=False))

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(decl)

    handle_pi = handle_comment = handle_unknown_decl = handle_decl


def assert_safe(html: str | None) -> None:
    """Only the allowed tags and attributes, well nested, and written canonically: the
    string is exactly what writing its parse again gives (every text escaped)."""
    if html is None:
        return
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed {checker.stack}"
    assert "".join(checker.out) == html, html
    assert "<script" not in html.lower()
