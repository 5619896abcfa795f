"""Specification of Discord markdown -> Matrix HTML (bridges.discord.markdown)."""

from __future__ import annotations

import random
import time

import pytest

from bridges.discord.markdown import MatrixText, discord_to_matrix, mentioned_ids
from tests.discord.markdown_spec import ALICE, NAMES, assert_safe

pytestmark = pytest.mark.engine_independent


def to_matrix(text: str) -> MatrixText:
    result = discord_to_matrix(text, NAMES)
    assert_safe(result.html)
    return result


def html_of(text: str) -> str:
    html = to_matrix(text).html
    assert html is not None, text
    return html


# ---------------------------------------------------------------------------- the table

CASES = [
    # (Discord text, Matrix HTML)
    ("**b**", "<strong>b</strong>"),
    ("*i*", "<em>i</em>"),
    ("_i_", "<em>i</em>"),
    ("__u__", "<u>u</u>"),
    ("~~s~~", "<del>s</del>"),
    ("||secret||", "<span data-mx-spoiler>secret</span>"),
    ("***bi***", "<strong><em>bi</em></strong>"),
    ("___ui___", "<u><em>ui</em></u>"),
    ("**a *b* c**", "<strong>a <em>b</em> c</strong>"),
    ("||**x**||", "<span data-mx-spoiler><strong>x</strong></span>"),
    ("**two\nlines**", "<strong>two<br>lines</strong>"),
    ("~~\\~~~", "<del>~</del>"),
    ("||a\\||b||", "<span data-mx-spoiler>a||b</span>"),
    ("`code`", "<code>code</code>"),
    ("`**not bold** <@111>`", "<code>**not bold** &lt;@111&gt;</code>"),
    ("``a`b``", "<code>a`b</code>"),
    ("```\ncode **x**\n```", "<pre><code>code **x**</code></pre>"),
    ("```py\nprint(1)\n```", '<pre><code class="language-py">print(1)</code></pre>'),
    ("```inline```", "<pre><code>inline</code></pre>"),
    ("> quoted", "<blockquote>quoted</blockquote>"),
    ("> a\n> b\nc", "<blockquote>a<br>b</blockquote>c"),
    (">>> all\nof\nit", "<blockquote>all<br>of<br>it</blockquote>"),
    ("> ```x```", "<blockquote><pre><code>x</code></pre></blockquote>"),
    ("# One", "<h1>One</h1>"),
    ("## Two", "<h2>Two</h2>"),
    ("### Three **b**", "<h3>Three <strong>b</strong></h3>"),
    ("-# small", "<sub>small</sub>"),
    ("- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
    ("* a\n* b", "<ul><li>a</li><li>b</li></ul>"),
    ("1. a\n2. b", "<ol><li>a</li><li>b</li></ol>"),
    ("3. a\n4. b", '<ol start="3"><li>a</li><li>b</li></ol>'),
    ("- a\n  - b\n- c", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>"),
    ("text\n- item", "text<ul><li>item</li></ul>"),
    ("[site](https://example.org/a_b)", '<a href="https://example.org/a_b">site</a>'),
    ("[**b**](https://e.org)", '<a href="https://e.org"><strong>b</strong></a>'),
    ("see https://e.org/x_y_z.", 'see <a href="https://e.org/x_y_z">https://e.org/x_y_z</a>.'),
    ("<https://e.org/q>", '<a href="https://e.org/q">https://e.org/q</a>'),
    ("<@111>", ALICE),
    ("<@!111>", ALICE),
    ("<@222>", '<a href="https://matrix.to/#/@bob:hs.test">Bob &lt;the&gt; &amp; co</a>'),
    ("<#10>", '<a href="https://matrix.to/#/#_discord_10:hs.test">#general</a>'),
    ("<#20>", '<a href="https://matrix.to/#/!room:hs.test">#random</a>'),
    (
        "<:blob:7>",
        '<img data-mx-emoticon src="mxc://hs.test/blob" alt=":blob:" title=":blob:" height="32">',
    ),
    (
        "**<a:party:8>**",
        '<strong><img data-mx-emoticon src="mxc://hs.test/party" alt=":party:" '
        'title=":party:" height="32"></strong>',
    ),
]


@pytest.mark.parametrize(("text", "html"), CASES)
def test_table(text: str, html: str) -> None:
    assert html_of(text) == html


PLAIN = [
    # (Discord text, body); no HTML needed
    ("hello world", "hello world"),
    ("snake_case_name", "snake_case_name"),
    ("a * b * c", "a * b * c"),
    ("**", "**"),
    ("~~ ~", "~~ ~"),
    ("a > b", "a > b"),
    (">no space", ">no space"),
    ("#no space", "#no space"),
    ("#### four", "#### four"),
    ("-no space", "-no space"),
    ("\\*not italic\\*", "*not italic*"),
    ("\\_\\_x\\_\\_", "__x__"),
    ("\\<@111>", "<@111>"),
    ("<@333>", "@nomxid"),
    ("<@999>", "@999"),
    ("<#30>", "#unbridged"),
    ("<#99>", "#99"),
    ("<@&5>", "@Mods & <Admins>"),
    ("<@&6>", "@6"),
    ("<:nomxc:77>", ":nomxc:"),
    ("<t:0:d>", "1970-01-01"),
    ("<t:1700000000>", "14 November 2023 22:13 UTC"),
    ("<t:1700000000:t>", "22:13 UTC"),
    ("<t:1700000000:R>", "14 November 2023 22:13 UTC"),
    ("</ping:123>", "/ping"),
    ("[js](javascript:alert(1))", "[js](javascript:alert(1))"),
    ("[ftp](ftp://e.org)", "[ftp](ftp://e.org)"),
    ("line\nbreak", "line\nbreak"),
]


@pytest.mark.parametrize(("text", "body"), PLAIN)
def test_plain_text_needs_no_html(text: str, body: str) -> None:
    assert to_matrix(text)[:2] == (body, None)


def test_body_keeps_the_markdown_as_typed_with_mentions_as_names() -> None:
    body = to_matrix("**hi** <@111>, see [this](https://e.org) in <#10>\n> q").body
    assert body == "**hi** Alice, see this (https://e.org) in #general\n> q"


def test_a_masked_link_whose_text_is_its_url_is_the_url_in_the_body() -> None:
    assert to_matrix("[https://e.org/](https://e.org)").body == "https://e.org/"


def test_fenced_code_inside_text() -> None:
    result = to_matrix("before\n```\nx <b>\n```\nafter")
    assert result.html == "before<pre><code>x &lt;b&gt;</code></pre>after"
    assert result.body == "before\n```\nx <b>\n```\nafter"


def test_a_url_takes_in_a_fence_after_it_as_on_discord() -> None:
    result = to_matrix("see https://e.org/```x``` y")
    assert result.html == 'see <a href="https://e.org/```x```">https://e.org/```x```</a> y'
    assert html_of("```https://e.org``` y") == "<pre><code>https://e.org</code></pre> y"
    assert html_of("```a https://e.org/``` ```b```") == (
        "<pre><code>a https://e.org/</code></pre><pre><code>b</code></pre>"
    )


@pytest.mark.parametrize(
    ("text", "html"),
    [
        # A quote is found first: its lines lose their "> ", then a code block in it is whole.
        (
            "> ```\n> code\n> more\n> ```\nafter",
            "<blockquote><pre><code>code\nmore</code></pre></blockquote>after",
        ),
        # A code block is found first: "> " lines in it are code.
        ("```\n> a\n```", "<pre><code>&gt; a</code></pre>"),
        # A fence opened in a quote and closed outside it closes nothing.
        ("> ```a\nb```", "<blockquote>```a</blockquote>b```"),
        (
            ">>> q\n```py\nx\n```",
            '<blockquote>q<pre><code class="language-py">x</code></pre></blockquote>',
        ),
        ("> a\n>>> b\nc", "<blockquote>a<br>b<br>c</blockquote>"),
        (" > indented", "<blockquote>indented</blockquote>"),
    ],
)
def test_quotes_and_code_blocks_in_discords_order(text: str, html: str) -> None:
    assert html_of(text) == html


def test_unclosed_markers_stay_literal() -> None:
    assert to_matrix("**open *and _more ~~ ||")[1] is None


def test_underscore_italics_only_at_word_boundaries() -> None:
    assert html_of("_a_ x_b_y") == "<em>a</em> x_b_y"


def test_headings_only_at_line_start() -> None:
    assert html_of("text # no\n# yes") == "text # no<h1>yes</h1>"


def test_quote_is_followed_by_an_unquoted_line() -> None:
    assert html_of("> q\nnot quoted") == "<blockquote>q</blockquote>not quoted"


# ---------------------------------------------------------------------------- mentions


def test_user_mentions_are_reported_once_in_order() -> None:
    result = to_matrix("<@222> <@111> <@!222> <@333> <@999>")
    assert result.mentions.user_ids == ["@bob:hs.test", "@_discord_111:hs.test"]
    assert result.mentions.room is False


@pytest.mark.parametrize("text", ["@everyone", "hi @here!", "**@everyone**"])
def test_everyone_and_here_become_room_mentions(text: str) -> None:
    result = to_matrix(text)
    assert "@room" in result.body
    assert result.mentions.room is True
    assert result.mentions.as_content() == {"user_ids": [], "room": True}


@pytest.mark.parametrize("text", ["`@everyone`", "\\@everyone", "mail@everyone.org"])
def test_everyone_in_code_escaped_or_in_words_is_no_mention(text: str) -> None:
    assert to_matrix(text).mentions.room is False


def test_mentions_in_code_are_text() -> None:
    result = to_matrix("```<@111>```")
    assert result.mentions.user_ids == []
    assert "&lt;@111&gt;" in (result.html or "")


def test_mentioned_ids_lists_what_to_look_up() -> None:
    found = mentioned_ids("<@1> <@!2> <#3> <@&4> <:e:5> <a:f:6> <@nope>")
    assert found == {"users": {"1", "2"}, "channels": {"3"}, "roles": {"4"}, "emojis": {"5", "6"}}


def test_without_names_mentions_show_their_ids() -> None:
    assert discord_to_matrix("<@1> <#2> <@&3> <:e:4>")[:2] == ("@1 #2 @3 :e:", None)


# ---------------------------------------------------------------------------- injection


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "**<script>alert(1)</script>**",
        "[x](javascript:alert(1))",
        '[x](https://e.org/"onmouseover="alert(1))',
        "[<img src=x onerror=y>](https://e.org)",
        "```\n</code></pre><script>x</script>\n```",
        "`</code><script>`",
        "> <iframe src=//evil>",
        "<@444> <#40> <:bad:9>",
        'https://e.org/"><script>alert(1)</script>',
    ],
)
def test_html_in_discord_text_reaches_matrix_escaped(text: str) -> None:
    result = to_matrix(text)
    html = result.html or ""
    assert "<script" not in html and "<iframe" not in html and "<img src=x" not in html
    assert 'href="javascript' not in html and 'onmouseover="' not in html


def test_a_bad_mxid_or_room_or_mxc_is_not_linked() -> None:
    result = to_matrix("**x** <@444> <#40> <:bad:9>")
    assert result.html == "<strong>x</strong> @Evil #evil :bad:"
    assert result.mentions.user_ids == []


# ---------------------------------------------------------------------------- fuzz, scale

ALPHABET = [
    *"*_~|`>#-\\[]()<>:@!&. \n\tah1",
    "**",
    "__",
    "~~",
    "||",
    "```",
    "> ",
    ">>> ",
    "# ",
    "-# ",
    "- ",
    "1. ",
    "<@111>",
    "<@!222>",
    "<#10>",
    "<@&5>",
    "<:blob:7>",
    "<a:party:8>",
    "<t:1700000000:R>",
    "@everyone",
    "@here",
    "https://e.org/a_b",
    "[x](https://e.org)",
    "<https://e.org>",
    "<script>",
    "</code>",
    "<img src=x onerror=y>",
    '"',
    "'",
    "&amp;",
    "\x00",
    "\r\n",
]


def test_fuzzed_discord_text_never_raises_and_gives_safe_html() -> None:
    rng = random.Random(22)
    for _ in range(4000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))
        result = to_matrix(text)  # assert_safe inside
        assert isinstance(result.body, str)
        for mxid in result.mentions.user_ids:
            assert mxid in {"@_discord_111:hs.test", "@bob:hs.test"}


@pytest.mark.parametrize(
    "text",
    [
        "*" * 4000,
        "_" * 4000,
        "~" * 4000,
        "|" * 4000,
        "`" * 4000,
        "[" * 2000 + "](" * 1000,
        "*a " * 1300,
        "**a" * 1300,
        "<" * 4000,
        "> " * 2000,
        "- " * 2000,
        "```" * 1300,
        "||**__~~" * 500,
        ("**" * 30 + "x") * 100,
        "\\" * 4000,
    ],
)
def test_long_hostile_messages_convert_quickly(text: str) -> None:
    started = time.monotonic()
    to_matrix(text)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "text",
    [
        "``````" + "a" * 40_000,
        "`" * 40_000,
        "` `` ``` ```` " * 3000,
        "**a***" * 7000 + "**",
        "https://e.org/```" * 3000,
        "x" * 40_000 + "```",
    ],
)
def test_conversion_stays_linear_on_ten_times_the_longest_message(text: str) -> None:
    started = time.monotonic()
    to_matrix(text)
    assert time.monotonic() - started < 5
