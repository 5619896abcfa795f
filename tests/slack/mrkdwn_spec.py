"""Shared by the mrkdwn specifications: a name table, the two converters bound to it, and
:func:`assert_safe`, the check that Matrix HTML holds only the tags the converter may write."""

from __future__ import annotations

from html.parser import HTMLParser

from bridges.slack.mrkdwn import (
    NameTable,
    SlackChannel,
    SlackUser,
    matrix_to_mrkdwn,
    mrkdwn_to_matrix,
)

WJ = "\u2060"
NAMES = NameTable(
    users={
        "U1": SlackUser("@slack_u1:hs.test", "Alice"),
        "U2": SlackUser("@bob:hs.test", "Bob <the> & co"),
        "W3": SlackUser(None, "nomxid"),
    },
    channels={
        "C1": SlackChannel("#slack_c1:hs.test", "general"),
        "C2": SlackChannel("!room:hs.test", "random"),
        "C3": SlackChannel("https://example.org/room", "linked"),
        "C4": SlackChannel(None, "unbridged"),
    },
)
ALICE = '<a href="https://matrix.to/#/@slack_u1:hs.test">Alice</a>'


def to_matrix(text: str) -> tuple[str, str | None]:
    return mrkdwn_to_matrix(text, NAMES)


def html_of(text: str) -> str:
    html = to_matrix(text)[1]
    assert html is not None, text
    return html


def to_slack(html: str, *, may: bool = False, **kwargs: str) -> str:
    return matrix_to_mrkdwn("", html, NAMES, may_mention_room=may, **kwargs)


#: What Matrix may get: these tags, no attribute but a safe href on <a>.
ALLOWED = {"strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a", "br"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, f"tag {tag}"
        if tag == "a":
            assert len(attrs) == 1 and attrs[0][0] == "href", attrs
            href = attrs[0][1] or ""
            assert href.startswith(("https://", "http://", "mailto:")), href
        elif tag == "ol" and attrs:
            assert len(attrs) == 1 and attrs[0][0] == "start" and (attrs[0][1] or "").isdigit()
        else:
            assert attrs == [], attrs
        if tag != "br":
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"mis-nested </{tag}> in {self.stack}"
        self.stack.pop()

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(decl)

    handle_pi = handle_comment = handle_unknown_decl = handle_decl


def assert_safe(html: str | None) -> None:
    if html is None:
        return
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed {checker.stack}"
