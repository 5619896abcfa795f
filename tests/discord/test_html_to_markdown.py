"""Specification of Matrix HTML -> Discord markdown (bridges.discord.html_to_markdown),
of split_message, and of round trips through both converters."""

from __future__ import annotations

import html as _html
import random
import re
import time
from html.parser import HTMLParser

import discord
import pytest

from bridges.discord.html_to_markdown import (
    DiscordText,
    escape_text,
    matrix_to_discord,
    split_message,
)
from bridges.discord.markdown import discord_to_matrix
from tests.discord.markdown_spec import NAMES, assert_safe

pytestmark = pytest.mark.engine_independent

ZWSP = "\u200b"


def to_discord(html: str, *, may: bool = False) -> DiscordText:
    return matrix_to_discord("", html, NAMES, may_mention_room=may)


def text_of(html: str, *, may: bool = False) -> str:
    return to_discord(html, may=may).text


# ---------------------------------------------------------------------------- the table

CASES = [
    # (Matrix HTML, Discord text)
    ("plain", "plain"),
    ("<b>b</b> <strong>s</strong>", "**b** **s**"),
    ("<i>i</i> <em>e</em>", "*i* *e*"),
    ("<u>u</u>", "__u__"),
    ("<del>d</del> <s>s</s> <strike>k</strike>", "~~d~~ ~~s~~ ~~k~~"),
    ('<span data-mx-spoiler="why">hidden</span>', "||hidden||"),
    ("<span data-mx-spoiler>hidden</span>", "||hidden||"),
    ("<b><i>bi</i></b>", "***bi***"),
    ("<b>a <b>nested</b> b</b>", "**a nested b**"),
    ("<b> spaced </b>x", "**spaced** x"),
    ("<i> it </i> x", "*it* x"),
    ("a<b></b>b", "ab"),
    ("<code>c*d</code>", "`c*d`"),
    ("<code>a`b</code>", "`` a`b ``"),
    ("<code>@everyone</code>", f"`@{ZWSP}everyone`"),
    ("<pre><code>x = *1*\n\ny</code></pre>", "```\nx = *1*\n\ny\n```"),
    ('<pre><code class="language-py">print(1)\n</code></pre>', "```py\nprint(1)\n```"),
    ("<pre>a```b</pre>", f"```\na`{ZWSP}``b\n```"),
    ("before<pre>x</pre>after", "before\n```\nx\n```\nafter"),
    ("<pre>a<pre>b</pre>c</pre>", "```\nabc\n```"),
    ("<blockquote>q</blockquote>after", "> q\nafter"),
    ("<blockquote><p>a</p><p>b</p></blockquote>", "> a\n> \n> b"),
    ("<blockquote>a<blockquote>b</blockquote></blockquote>", "> a\n> b"),
    ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
    ("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b"),
    ('<ol start="7"><li>a</li></ol>', "7. a"),
    ("<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c"),
    ("<h1>One</h1><h2>Two</h2><h3>Three</h3>", "# One\n\n## Two\n\n### Three"),
    ("<h5>Five</h5>", "**Five**"),
    ("<p>one</p><p>two</p>", "one\n\ntwo"),
    ("a<br>b<br><br>c", "a\nb\n\nc"),
    ('<a href="https://e.org/a_b">site</a>', "[site](https://e.org/a_b)"),
    ('<a href="https://e.org/x">https://e.org/x</a>', "https://e.org/x"),
    ('<a href="https://e.org/(x)">y</a>', "[y](https://e.org/%28x%29)"),
    ('<a href="javascript:alert(1)">js</a>', "js"),
    (
        '<a href="https://e.org"><a href="https://matrix.to/#/@bob:hs.test">B</a></a>',
        "[<@222>](https://e.org)",
    ),
    ('<a href="https://e.org"></a>', "https://e.org"),
    ('<a href="mxc://hs/x">m</a>', "m"),
    ('<a href="https://matrix.to/#/@_discord_111:hs.test">Alice</a>: hi', "<@111>: hi"),
    ('<a href="matrix:u/bob:hs.test">Bob</a>', "<@222>"),
    ('<a href="https://matrix.to/#/@carol:hs.test">Carol</a>', "Carol"),
    ('<a href="https://matrix.to/#/@nodigits:hs.test">N</a>', "N"),
    ('<a href="https://matrix.to/#/%23_discord_10:hs.test">#general</a>', "<#10>"),
    ('<a href="https://matrix.to/#/!room:hs.test">room</a>', "<#20>"),
    ('in <a href="https://matrix.to/#/#other:hs.test">#other</a>', "in #other"),
    ('<a href="https://matrix.to/#/#other:hs.test">#other</a>', "\\#other"),  # line start
    ("a <b>b</b>- c <i>#</i>tag 1<b>.</b> x", "a **b**- c *#*tag 1**.** x"),
    ("<ul><li># h</li><li>2. x</li></ul>", "- \\# h\n- 2\\. x"),
    ("<blockquote>&gt; q<br>- l</blockquote>", "> \\> q\n> \\- l"),
    ('<code><a href="https://e.org">x</a></code>', "`x`"),
    ('<img data-mx-emoticon src="mxc://hs.test/blob" alt=":blob:">', "<:blob:7>"),
    ('<img data-mx-emoticon src="mxc://hs.test/party" alt=":party:">', "<a:party:8>"),
    ('<img data-mx-emoticon src="mxc://hs.test/other" alt=":other:">', ":other:"),
    ("<mx-reply><blockquote>old <b>msg</b></blockquote></mx-reply>reply", "reply"),
    ("<script>alert(1)</script><style>x</style>ok", "ok"),
    (
        "<p>- no list</p><p># no heading</p><p>&gt; no quote</p>",
        "\\- no list\n\n\\# no heading\n\n\\> no quote",
    ),
    ("1. not a list", "1\\. not a list"),
    ("<unknown>text</unknown>", "text"),
    ("</b>stray", "stray"),
    ("<b>unclosed", "**unclosed**"),
]


@pytest.mark.parametrize(("html", "text"), CASES)
def test_table(html: str, text: str) -> None:
    assert text_of(html) == text


# ---------------------------------------------------------------------------- escaping

ESCAPES = [
    ("*not italic*", "\\*not italic\\*"),
    ("__init__", "\\_\\_init\\_\\_"),
    ("~~x~~ ||y||", "\\~\\~x\\~\\~ \\|\\|y\\|\\|"),
    ("`code`", "\\`code\\`"),
    ("C:\\path", "C:\\\\path"),
    # Discord pings for an escaped <@id> as well: a zero-width space after the sigil.
    (
        "<@111> <@!111> <#10> <@&5> <:e:7> <t:1:R>",
        f"\\<@{ZWSP}111> \\<@!{ZWSP}111> \\<#10> \\<@&{ZWSP}5> \\<:e:7> \\<t:1:R>",
    ),
    ("[x](https://e.org)", "\\[x](https://e.org)"),
    (
        "> quote\n# head\n-# sub\n- item\n  * item\n12. item",
        "\\> quote\n\\# head\n\\-# sub\n\\- item\n  \\* item\n12\\. item",
    ),
    ("a > b # c - d 1. e", "a > b # c - d 1. e"),
    ("see https://e.org/a_b*c", "see https://e.org/a_b*c"),
]


@pytest.mark.parametrize(("body", "text"), ESCAPES)
def test_plain_body_is_escaped(body: str, text: str) -> None:
    assert matrix_to_discord(body, None, NAMES).text == text


@pytest.mark.parametrize(("body", "text"), [case for case in ESCAPES if "\n " not in case[0]])
def test_html_text_is_escaped_the_same(body: str, text: str) -> None:
    assert text_of("<br>".join(_html.escape(line) for line in body.split("\n"))) == text


@pytest.mark.parametrize(("body", "_"), ESCAPES)
def test_escaped_text_reads_back_as_typed(body: str, _: str) -> None:
    result = discord_to_matrix(escape_text(body), NAMES)
    assert result.body == body
    assert "<strong>" not in (result.html or "") and "<em>" not in (result.html or "")
    assert result.mentions.user_ids == []


def test_markup_the_html_parser_gives_up_on_falls_back_to_the_body() -> None:
    try:
        HTMLParser().feed("<![<b>")
    except AssertionError:
        gives_up = True  # Python 3.11's html.parser
    else:
        gives_up = False
    result = matrix_to_discord("*x*", "<![<b>x</b>", NAMES).text
    assert result == "\\*x\\*" if gives_up else isinstance(result, str)
    assert isinstance(matrix_to_discord("", "<![<b>x*</b>", NAMES).text, str)


def test_a_url_keeps_its_characters_and_cannot_swallow_an_escape() -> None:
    result = matrix_to_discord("https://e.org/a_b*c|<@111> and <#10>", None, NAMES)
    assert result.text == f"https://e.org/a_b*c|<{ZWSP}@111> and \\<#10>"
    back = discord_to_matrix(result.text, NAMES)
    assert back.mentions.user_ids == [] and "#general" not in back.body


def test_a_link_then_text_cannot_let_the_url_swallow_an_escape() -> None:
    result = to_discord('<a href="https://e.org/q">https://e.org/q</a>&lt;#10&gt;')
    assert result.text == f"https://e.org/q<{ZWSP}#10>"
    assert "#general" not in discord_to_matrix(result.text, NAMES).body
    pill = '<a href="https://matrix.to/#/@bob:hs.test">B</a>'
    result = to_discord(f'<a href="https://e.org">x</a> https://e.org/\\{pill}')
    # The user's backslash ends the URL run, which takes it in on Discord: the pill pings.
    assert result.text == "[x](https://e.org) https://e.org/\\<@222>"


def test_control_characters_are_dropped() -> None:
    assert matrix_to_discord("a\x00b\r\nc\x07\x01\x02\x03", None).text == "ab\nc"


# ---------------------------------------------------------------------------- room mentions


@pytest.mark.parametrize("word", ["@everyone", "@here", "@EVERYONE"])
def test_everyone_typed_by_a_sender_who_may_not_is_neutralised(word: str) -> None:
    for result in (matrix_to_discord(f"hi {word}!", None), to_discord(f"<p>hi {word}!</p>")):
        assert result.text == f"hi @{ZWSP}{word[1:]}!"
        assert result.everyone is False


def test_room_mention_without_permission_stays_text() -> None:
    result = to_discord("@room hi")
    assert result.text == "@room hi" and result.everyone is False


def test_room_mention_with_permission_pings_everyone() -> None:
    for result in (
        matrix_to_discord("@room hi", None, may_mention_room=True),
        to_discord("<b>@room</b>", may=True),
    ):
        assert "@everyone" in result.text
        assert result.everyone is True


def test_everyone_and_here_are_kept_for_a_sender_who_may() -> None:
    result = to_discord("@everyone and @here", may=True)
    assert result.text == "@everyone and @here" and result.everyone is True


def test_everyone_split_over_tags_is_neutralised() -> None:
    for html in ("@<span>everyone</span>", "<span>@</span>everyone", "@<b></b>here"):
        result = to_discord(html)
        assert not re.search(r"@(everyone|here)", result.text), result.text


def test_everyone_in_code_never_pings() -> None:
    result = to_discord("<code>@everyone</code><pre>@here</pre>", may=True)
    assert "@everyone" not in result.text and "@here" not in result.text
    assert result.everyone is False


def test_typed_mention_syntax_never_pings_even_in_code() -> None:
    result = to_discord("<code>&lt;@111&gt;</code> <pre>&lt;@&amp;5&gt;</pre>")
    assert not re.search(r"<@[!&]?[0-9]", result.text), result.text
    assert result.user_ids == set()


def test_mentioned_users_and_allowed_mentions() -> None:
    result = to_discord(
        '<a href="https://matrix.to/#/@_discord_111:hs.test">A</a> '
        '<a href="https://matrix.to/#/@bob:hs.test">B</a> &lt;@333&gt;'
    )
    assert result.user_ids == {"111", "222"}
    allowed = result.allowed_mentions()
    assert isinstance(allowed, discord.AllowedMentions)
    assert allowed.to_dict() == {"parse": [], "users": [111, 222]}
    assert to_discord("@room", may=True).allowed_mentions().to_dict() == {
        "parse": ["everyone"],
        "users": [],
    }


# ---------------------------------------------------------------------------- round trips

ROUND_TRIPS = [
    "<strong>b</strong> <em>i</em> <u>u</u> <del>s</del>",
    "<span data-mx-spoiler>hidden</span>",
    "<code>x*y</code>",
    '<pre><code class="language-py">print("*")</code></pre>',
    "<blockquote>a<br>b</blockquote>after",
    "<blockquote>q<pre><code>x\ny</code></pre></blockquote>after",
    "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>",
    '<ol start="3"><li>x</li><li>y</li></ol>',
    "<h1>One</h1><h3>Three</h3>",
    '<a href="https://e.org/a_b">site</a>',
    '<a href="https://matrix.to/#/@_discord_111:hs.test">Alice</a> hi',
    '<a href="https://matrix.to/#/#_discord_10:hs.test">#general</a>',
    '<img data-mx-emoticon src="mxc://hs.test/blob" alt=":blob:" title=":blob:" height="32">',
    "a * b _ c ~ d | e ` f &lt;@111&gt; \\ g",
]


@pytest.mark.parametrize("html", ROUND_TRIPS)
def test_matrix_html_round_trips_through_discord(html: str) -> None:
    text = text_of(html)
    back = discord_to_matrix(text, NAMES)
    assert_safe(back.html)
    # Typed mention syntax comes back with the zero-width space that keeps it from pinging.
    assert (back.html or _html.escape(back.body, quote=False)).replace(ZWSP, "") == html


DISCORD_ROUND_TRIPS = [
    "**b** *i* __u__ ~~s~~ ||sp||",
    "`code` and\n```py\nx = 1\n```",
    "> quoted\nnot",
    "- a\n  - b\n- c",
    "# Head",
    "[site](https://e.org/a_b)",
    "<@111> in <#10> <:blob:7>",
]


@pytest.mark.parametrize("text", DISCORD_ROUND_TRIPS)
def test_discord_markdown_round_trips_through_matrix(text: str) -> None:
    result = discord_to_matrix(text, NAMES)
    assert matrix_to_discord(result.body, result.html, NAMES).text == text


# ---------------------------------------------------------------------------- split_message


def test_short_text_is_one_piece() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("x" * 2000) == ["x" * 2000]


def test_split_at_line_then_word_boundaries() -> None:
    text = "\n".join(f"line {n} " + "w" * 50 for n in range(100))
    pieces = split_message(text)
    assert all(len(piece) <= 2000 for piece in pieces)
    assert "\n".join(pieces) == text
    words = split_message(" ".join(["word"] * 1000), 100)
    assert all(len(piece) <= 100 and not piece.endswith(" ") for piece in words)
    assert " ".join(words) == " ".join(["word"] * 1000)


def test_split_without_boundaries_cuts_hard_but_not_after_a_backslash() -> None:
    pieces = split_message("a" * 99 + "\\*" + "b" * 300, 100)
    assert all(len(piece) <= 100 for piece in pieces)
    assert not any(piece.endswith("\\") for piece in pieces[:-1])
    assert "".join(pieces) == "a" * 99 + "\\*" + "b" * 300


def test_split_closes_and_reopens_a_code_block() -> None:
    code = "\n".join(f"print({n})" for n in range(400))
    text = "intro\n```py\n" + code + "\n```\nafter"
    pieces = split_message(text)
    assert len(pieces) > 1
    assert all(len(piece) <= 2000 for piece in pieces)
    for piece in pieces:
        assert piece.count("```") % 2 == 0, piece[:40]
    assert pieces[1].startswith("```py\n")
    lines = [line for piece in pieces for line in piece.split("\n") if line.startswith("print(")]
    assert lines == code.split("\n")
    assert pieces[-1].endswith("```\nafter")


def test_split_fuzz_keeps_everything_within_the_limit() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b ", "\n", "```", "```py\n", "\\", "**", "word "]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
        for piece in split_message(text, 60):
            assert len(piece) <= 60


# ---------------------------------------------------------------------------- injection, fuzz


@pytest.mark.parametrize(
    "html",
    [
        '<a href="https://e.org">[x](https://evil)</a>',
        '<a href="https://e.org/)[y](https://evil">x</a>',
        "<code>`</code>@everyone",
        "<b>@</b>everyone",
        "&lt;@&amp;5&gt; &lt;@!111&gt;",
        '<img src="x" alt="&lt;@111&gt; @everyone">',
        '<span data-mx-spoiler="@everyone">x</span>',
    ],
)
def test_matrix_content_cannot_inject_discord_mentions_or_links(html: str) -> None:
    result = to_discord(html)
    back = discord_to_matrix(result.text, NAMES)
    assert back.mentions.user_ids == [] and back.mentions.room is False
    assert "evil" not in (back.html or "").split('href="')[-1].split('"')[0] or "evil" in html
    assert result.user_ids == set() and result.everyone is False


HTML_ALPHABET = [
    *"*_~|`>#-\\[]()<:@!&. \n1a",
    "<b>",
    "</b>",
    "<i>",
    "</i>",
    "<u>",
    "</u>",
    "<del>",
    "</del>",
    "<code>",
    "</code>",
    "<pre>",
    "</pre>",
    "<blockquote>",
    "</blockquote>",
    "<ul>",
    "<ol>",
    "<li>",
    "</li>",
    "</ul>",
    "</ol>",
    "<p>",
    "</p>",
    "<br>",
    "<h1>",
    "</h1>",
    "<span data-mx-spoiler>",
    "</span>",
    '<a href="https://e.org">',
    '<a href="https://matrix.to/#/@bob:hs.test">',
    '<a href="javascript:x">',
    "</a>",
    "<mx-reply>",
    "</mx-reply>",
    "<script>",
    "</script>",
    '<img data-mx-emoticon src="mxc://hs.test/blob" alt=":blob:">',
    "@room",
    "@everyone",
    "@here",
    "@",
    "everyone",
    "&lt;@111&gt;",
    "&amp;",
    "```",
]


def test_fuzzed_matrix_html_never_raises_and_never_pings_unless_allowed() -> None:
    rng = random.Random(23)
    for number in range(4000):
        html = "".join(rng.choice(HTML_ALPHABET) for _ in range(rng.randint(1, 40)))
        may = number % 3 == 0
        result = to_discord(html, may=may)
        if not may:
            assert not re.search(r"@(everyone|here)", result.text, re.I), (html, result.text)
            assert result.everyone is False
        assert result.user_ids <= {"222"}
        assert set(re.findall(r"<@[!&]?([0-9]+)>", result.text)) == result.user_ids
        for piece in split_message(result.text, 50):
            assert len(piece) <= 50
        assert_safe(discord_to_matrix(result.text, NAMES).html)


def test_fuzzed_plain_text_reads_back_as_typed() -> None:
    rng = random.Random(24)
    alphabet = [*"*_~|`>#-+\\[]()<:!&. \n1a", "<@111>", "<#10>", "```", "> ", "# ", "1. "]
    alphabet += ["-# ", "  - ", ">>> ", "||", "**", "https://e.org/a_b", "<t:1:R>", "<:e:7>"]
    for _ in range(4000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        text = matrix_to_discord(body, None, NAMES).text
        back = discord_to_matrix(text, NAMES)
        typed = "\n".join(line.rstrip(" ") for line in body.split("\n")).strip("\n ")
        assert back.body.replace(ZWSP, "") == typed, (body, text, back.body)
        assert back.mentions.user_ids == []


def test_deeply_nested_html_converts_quickly() -> None:
    for html in (
        "<b><i>" * 5000,
        "<blockquote>" * 5000 + "x",
        "<ul><li>" * 3000 + "x",
        "<pre>" * 3000 + "x",
        "<span data-mx-spoiler>x" * 3000,
    ):
        started = time.monotonic()
        text = to_discord(html).text
        assert time.monotonic() - started < 5
        assert len(text) < 3100  # nesting adds no markers past a bounded depth
