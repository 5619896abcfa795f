"""Specification of Matrix HTML -> Slack mrkdwn (bridges.slack.html_to_mrkdwn, slack_line),
and of round trips through both converters."""

from __future__ import annotations

import random
import re
import time

import pytest

from bridges.slack.html_to_mrkdwn import matrix_to_mrkdwn, slack_escape
from bridges.slack.mrkdwn import mrkdwn_to_matrix
from tests.slack.mrkdwn_spec import ALICE, NAMES, WJ, to_matrix, to_slack

pytestmark = pytest.mark.engine_independent

# =========================================================================== Matrix -> Slack
# ---------------------------------------------------------------------------- plain bodies


def test_plain_body_is_escaped() -> None:
    assert matrix_to_mrkdwn("a < b && <!channel> <@U1> <https://x|y>") == (
        "a &lt; b &amp;&amp; &lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt;"
    )


def test_plain_body_drops_control_characters() -> None:
    assert matrix_to_mrkdwn("a\x00b\r\nc\x07") == "ab\nc"


def test_slack_escape() -> None:
    assert slack_escape("&lt; <>") == "&amp;lt; &lt;&gt;"


# ---------------------------------------------------------------------------- room mentions


@pytest.mark.parametrize(
    ("text", "without", "with_power"),
    [
        ("hey @room", "hey @room", "hey <!channel>"),
        ("@channel now", f"@{WJ}channel now", "<!channel> now"),
        ("@here now", f"@{WJ}here now", "<!here> now"),
        ("@everyone", f"@{WJ}everyone", f"@{WJ}everyone"),
        # Even inside a word (Slack's rules for that are not documented): an invisible change.
        ("mail a@channel.org", f"mail a@{WJ}channel.org", f"mail a@{WJ}channel.org"),
        ("@Channel @HERE", f"@{WJ}Channel @{WJ}HERE", "<!channel> <!here>"),
        ("@roomy @channels", "@roomy @channels", "@roomy @channels"),
        ("(@here)", f"(@{WJ}here)", "(<!here>)"),
    ],
)
def test_room_mentions_need_power(text: str, without: str, with_power: str) -> None:
    assert matrix_to_mrkdwn(text, None, NAMES, may_mention_room=False) == without
    assert matrix_to_mrkdwn(text, None, NAMES, may_mention_room=True) == with_power
    html = f"<p>{text}</p>"
    assert to_slack(html) == without
    assert to_slack(html, may=True) == with_power


def test_room_mention_can_map_to_here() -> None:
    assert to_slack("@room", may=True, room_mention="here") == "<!here>"


def test_room_mentions_in_code_are_never_converted() -> None:
    assert to_slack("<code>@channel</code>", may=True) == f"`@{WJ}channel`"
    assert to_slack("<pre>@here</pre>", may=True) == f"```\n@{WJ}here\n```"


def test_typed_slack_syntax_in_html_stays_text() -> None:
    html = "&lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;https://x|y&gt; &amp;amp;"
    assert to_slack(html, may=True) == (
        "&lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;https://x|y&gt; &amp;amp;"
    )


def test_room_mention_in_a_link_label_is_neutralised() -> None:
    assert (
        to_slack('<a href="https://x.org">@channel</a>', may=True)
        == f"<https://x.org|@{WJ}channel>"
    )


# ---------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<strong>b</strong>", "*b*"),
        ("<b>b</b>", "*b*"),
        ("<em>i</em>", "_i_"),
        ("<i>i</i>", "_i_"),
        ("<del>s</del>", "~s~"),
        ("<s>s</s>", "~s~"),
        ("<strike>s</strike>", "~s~"),
        ("<code>c</code>", "`c`"),
        ("<b><i>x</i></b>", "*_x_*"),
        ("<i><b>x</b></i>", "*_x_*"),
        ("<b>a <i>b</i> c</b>", "*a _b_ c*"),
        ("<b>bold </b>x", "*bold* x"),
        ("x<b> bold</b>", "x *bold*"),
        ("<b>a</b><b>b</b>", "*ab*"),
        ("<b>a</b> <b>b</b>", "*a* *b*"),
        ("<b>a <i> </i>b</b>", "*a b*"),
        ("<b><code>c</code></b>", "*`c`*"),
        ("<code>a<b>b</b>c</code>", "`abc`"),
        ("<code>a`b</code>", "`aˋb`"),
        ("<code>a &lt; b</code>", "`a &lt; b`"),
        ("<h1>Title</h1><p>text</p>", "*Title*\n\ntext"),
        ("<u>under</u> <font color=red>red</font> <span>s</span>", "under red s"),
        ("<b></b>x", "x"),
    ],
)
def test_inline_html(html: str, text: str) -> None:
    assert to_slack(html) == text


def test_paragraphs_and_breaks() -> None:
    assert to_slack("<p>a</p><p>b<br>c</p>") == "a\n\nb\nc"
    assert to_slack("a<br><br>b") == "a\n\nb"
    assert to_slack("a\n   b") == "a b"  # HTML whitespace


def test_pre_block() -> None:
    assert to_slack("<pre><code>if a &lt; b:\n    *x*\n</code></pre>") == (
        "```\nif a &lt; b:\n    *x*\n```"
    )


def test_pre_between_paragraphs() -> None:
    assert to_slack("<p>a</p><pre><code>x</code></pre><p>b</p>") == "a\n\n```\nx\n```\n\nb"


def test_pre_cannot_be_closed_from_inside() -> None:
    assert to_slack("<pre>a```b</pre>") == "```\na`\u200b``b\n```"


def test_blockquote() -> None:
    assert to_slack("<blockquote><p>a</p><p>b</p></blockquote><p>after</p>") == "> a\n>\n> b\nafter"
    assert to_slack("<blockquote>a<br>b</blockquote>") == "> a\n> b"


def test_empty_line_inside_a_quote_stays_quoted() -> None:
    assert to_slack("<blockquote>a<br><br>b</blockquote>") == "> a\n>\n> b"


def test_loose_list_stays_one_list() -> None:
    assert to_slack("<ul><li><p>a</p></li><li><p>b</p></li></ul>") == "• a\n• b"
    assert to_slack("<p>intro</p><ul><li>a</li></ul>") == "intro\n• a"


def test_lists() -> None:
    assert to_slack("<ul><li>a</li><li><b>b</b></li></ul>") == "• a\n• *b*"
    assert to_slack("<ol><li>a</li><li>b</li></ol>") == "1. a\n2. b"
    assert to_slack('<ol start="7"><li>a</li></ol>') == "7. a"
    assert to_slack('<ol start="x"><li>a</li></ol>') == "1. a"


def test_nested_lists() -> None:
    html = "<ul><li>a<ul><li>b<ol><li>c</li></ol></li></ul></li><li>d</li></ul>"
    assert to_slack(html) == "• a\n    ◦ b\n        1. c\n• d"


def test_list_in_quote() -> None:
    assert to_slack("<blockquote><ul><li>a</li><li>b</li></ul></blockquote>") == "> • a\n> • b"


def test_reply_fallback_script_and_style_are_dropped() -> None:
    html = (
        "<mx-reply><blockquote><a href='https://matrix.to/#/@x:y'>x</a> old</blockquote>"
        "</mx-reply>new<script>alert(1)</script><style>p{}</style>"
    )
    assert to_slack(html) == "new"


def test_unknown_tags_become_their_text() -> None:
    assert to_slack("<marquee>hi</marquee> <details><summary>s</summary>d</details>") == "hi\ns\nd"
    assert to_slack('<img src="mxc://x/y" alt=":party:">') == ":party:"


def test_stray_and_unclosed_tags() -> None:
    assert to_slack("</b>a <b>b") == "a *b*"
    assert to_slack("<b><i>a</b> c</i>") == "*_a_* c"


# ---------------------------------------------------------------------------- word boundaries
# Slack formats only at word boundaries: an opening marker after the start, a space or
# punctuation; a closing one before the end, a space or punctuation. A pair Slack would show as
# text is not written (the emphasis is lost, but no stray asterisks appear).


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a<b>b</b>c", "abc"),
        ("<b>un</b>believable", "unbelievable"),
        ("un<i>believ</i>able", "unbelievable"),
        ("x<del>y</del>", "xy"),
        ("<b><i>a</i></b>c", "ac"),  # the outer pair goes, then the inner
        ("<b><i>a</b>c</i>", "ac"),
        ("a<b>b</b>c <b>d</b>", "abc *d*"),  # each pair on its own
        ("<b>whole</b> word", "*whole* word"),
        ("(<b>x</b>)", "(*x*)"),
        ("<b>x</b>, <i>y</i>.", "*x*, _y_."),
        ("<b>a</b><i>b</i>", "*a*_b_"),  # punctuation next to punctuation is a boundary
        ("<i>snake</i>_case", "_snake_\uff3fcase"),  # a typed _ touching ours: a look-alike
        ("a<code>b</code>c", "a`b`c"),  # code spans need no boundary
        ("<b>a <code>b</code>c</b>", "*a `b`c*"),
    ],
)
def test_markers_slack_would_not_read_are_left_out(html: str, text: str) -> None:
    assert to_slack(html) == text


WORD_HTML = ["a", "b", " ", "<b>", "</b>", "<i>", "</i>", "<s>", "</s>", "(", ".", "<code>x</code>"]


def test_fuzzed_every_marker_written_is_read_as_formatting() -> None:
    """Our own parser stands in for Slack: each * _ ~ written opens or closes formatting."""
    rng = random.Random(5)
    for _ in range(3000):
        html = "".join(rng.choice(WORD_HTML) for _ in range(rng.randint(1, 25)))
        text = to_slack(html)
        formatted = mrkdwn_to_matrix(text)[1] or ""
        for mark, tag in (("*", "<strong>"), ("_", "<em>"), ("~", "<del>")):
            assert text.count(mark) == 2 * formatted.count(tag), (html, text, formatted)


# ---------------------------------------------------------------------------- literal markers
# Slack has no escape. A * _ ~ ` typed on Matrix stays as typed where Slack would not format it;
# where Slack would, it becomes a look-alike: ∗ (U+2217), ＿ (U+FF3F), ∼ (U+223C), ˋ (U+02CB).


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("a *not bold* b", "a \u2217not bold\u2217 b"),
        ("_not it_", "\uff3fnot it\uff3f"),
        ("~not struck~", "\u223cnot struck\u223c"),
        ("use `ls` here", "use \u02cbls\u02cb here"),
        ("```\nnot a block\n```", "\u02cb\u02cb\u02cb\nnot a block\n\u02cb\u02cb\u02cb"),
        ("*a _b_ c*", "\u2217a \uff3fb\uff3f c\u2217"),
        # Where Slack would leave them alone, they stay.
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("2*3*4", "2*3*4"),
        ("snake_case_name and __init__", "snake_case_name and __init__"),
        ("~/path and ~/other", "~/path and ~/other"),
        ("*unclosed", "*unclosed"),
        ("a lone ` backtick", "a lone ` backtick"),
        ("**", "**"),
        ("* item\n* item", "* item\n* item"),
        ("*a\nb*", "*a\nb*"),  # no marker spans a line
    ],
)
def test_literal_markers_in_plain_bodies(body: str, text: str) -> None:
    assert matrix_to_mrkdwn(body) == text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a *b* c", "a \u2217b\u2217 c"),
        ("<b>*x*</b>", "*\u2217x\u2217*"),
        ("<b>*x</b>", "*\u2217x*"),  # touching our marker, it would break it
        ("<i>a</i> *b", "_a_ *b"),
        ("<code>*x* _y_</code>", "`*x* _y_`"),  # nothing is formatted inside code
        ("<pre>*x* `y`</pre>", "```\n*x* `y`\n```"),
        ('<a href="https://x.org/a_b_c">doc</a>', "<https://x.org/a_b_c|doc>"),
        ('<a href="https://x.org/a_b_">https://x.org/a_b_</a>', "<https://x.org/a_b_>"),
        ('<a href="https://x.org">*x*</a>', "<https://x.org|\u2217x\u2217>"),
        ("<p>*a</p><p>b*</p>", "*a\n\nb*"),
        ("x \ufdd0y\ufdd0", "x y"),  # our placeholders cannot be smuggled in
    ],
)
def test_literal_markers_in_html(html: str, text: str) -> None:
    assert to_slack(html) == text


LITERAL_ALPHABET = ["*", "_", "~", "`", "```", "a", "b", "2", " ", "\n", "(", ".", "&", "<"]


def test_fuzzed_plain_text_never_becomes_slack_formatting() -> None:
    """Read back by our parser (Slack's rules), typed text stays text, character for character
    but for the look-alikes."""
    back = str.maketrans({"\u2217": "*", "\uff3f": "_", "\u223c": "~", "\u02cb": "`"})
    rng = random.Random(8)
    for _ in range(3000):
        body = "".join(rng.choice(LITERAL_ALPHABET) for _ in range(rng.randint(1, 25)))
        text = matrix_to_mrkdwn(body)
        read, formatted = mrkdwn_to_matrix(text)
        assert formatted is None or not re.search(r"<(strong|em|del|code|pre)>", formatted), (
            body,
            text,
            formatted,
        )
        assert read.translate(back) == body, (body, text, read)


# ---------------------------------------------------------------------------- spoilers
# Slack cannot hide text. A spoiler is shown, announced, and its end marked: [spoiler: text],
# or [spoiler (reason): text]; the rest of the message reads on after the bracket.


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<span data-mx-spoiler>Snape</span> did it", "[spoiler: Snape] did it"),
        ('<span data-mx-spoiler="">x</span>', "[spoiler: x]"),
        (
            '<span data-mx-spoiler="book 6">Snape <b>kills</b> him</span>',
            "[spoiler (book 6): Snape *kills* him]",
        ),
        ('<b><span data-mx-spoiler="why">x</span></b>', "*[spoiler (why): x]*"),
        ("<span data-mx-spoiler>a<br>b</span>", "[spoiler: a\nb]"),
        (
            '<a href="https://x.org"><span data-mx-spoiler>link</span></a>',
            "<https://x.org|[spoiler: link]>",
        ),
        ('<span data-mx-spoiler=" a\n  b ">x</span>', "[spoiler (a b): x]"),
        ('<span data-mx-spoiler="' + "r" * 300 + '">x</span>', "[spoiler (" + "r" * 100 + "): x]"),
        ("<span>not a spoiler</span>", "not a spoiler"),
    ],
)
def test_spoilers_are_shown_and_announced(html: str, text: str) -> None:
    assert to_slack(html) == text


def test_spoiler_reason_is_text_that_cannot_mention_or_format() -> None:
    html = '<span data-mx-spoiler="@room &lt;!channel&gt; &lt;@U1&gt; *x*">s</span>'
    text = to_slack(html, may=True)
    assert text == "[spoiler (@room &lt;!channel&gt; &lt;@U1&gt; \u2217x\u2217): s]"
    assert (
        to_slack('<span data-mx-spoiler="@here">s</span>', may=True) == f"[spoiler (@{WJ}here): s]"
    )


# ---------------------------------------------------------------------------- pills and links


def test_user_pill_maps_back_to_slack() -> None:
    assert to_slack(f"{ALICE}: hi") == "<@U1>: hi"


def test_unmapped_user_pill_is_its_name() -> None:
    assert to_slack('<a href="https://matrix.to/#/@someone:else.org">Some One</a>') == "Some One"
    assert to_slack('<a href="https://matrix.to/#/@someone:else.org"></a>') == "@someone:else.org"
    assert to_slack('<a href="https://matrix.to/#/%40bob%3Ahs.test">Bob</a>') == "<@U2>"


def test_room_pills() -> None:
    assert to_slack('<a href="https://matrix.to/#/%23slack_c1:hs.test">#general</a>') == "<#C1>"
    assert to_slack('<a href="https://matrix.to/#/#slack_c1:hs.test">#general</a>') == "<#C1>"
    assert to_slack('<a href="https://matrix.to/#/!room:hs.test">#random</a>') == "<#C2>"
    assert to_slack('<a href="https://matrix.to/#/#other:x.org">#other</a>') == "#other"


def test_matrix_uri_pills() -> None:
    assert to_slack('<a href="matrix:u/slack_u1:hs.test?action=chat">Alice</a>') == "<@U1>"
    assert to_slack('<a href="matrix:r/slack_c1:hs.test">#general</a>') == "<#C1>"
    assert to_slack('<a href="matrix:roomid/room:hs.test">#random</a>') == "<#C2>"
    assert to_slack('<a href="matrix:u/someone:else.org">Some One</a>') == "Some One"
    assert to_slack('<a href="matrix:roomid/room:hs.test/e/$ev">msg</a>') == "msg"


def test_name_table_reverse_lookups() -> None:
    assert NAMES.slack_user("@bob:hs.test") == "U2"
    assert NAMES.slack_user("@nobody:hs.test") is None
    assert NAMES.slack_channel("!room:hs.test") == "C2"
    assert NAMES.slack_channel("#nowhere:hs.test") is None


def test_table_cells_stay_apart() -> None:
    html = "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
    assert to_slack(html) == "a b\n1 2"


def test_event_permalink_is_a_link() -> None:
    href = "https://matrix.to/#/!room:hs.test/$event?via=hs.test"
    assert to_slack(f'<a href="{href}">msg</a>') == f"<{href}|msg>"


def test_links() -> None:
    assert to_slack('<a href="https://x.org/a_b">label</a>') == "<https://x.org/a_b|label>"
    assert to_slack('<a href="https://x.org/">https://x.org</a>') == "<https://x.org/>"
    assert to_slack('<a href="mailto:a@b.org">a@b.org</a>') == "<mailto:a@b.org>"
    assert to_slack('<a href="https://x.org/?a=1&amp;b=2">q &amp; a</a>') == (
        "<https://x.org/?a=1&amp;b=2|q &amp; a>"
    )
    assert (
        to_slack('<a href="https://x.org/a|b>c">x > y</a>') == "<https://x.org/a%7Cb&gt;c|x &gt; y>"
    )
    assert to_slack('<a href="https://x.org"></a>') == "<https://x.org>"


@pytest.mark.parametrize(
    "href", ["javascript:alert(1)", "JAVASCRIPT:x", "data:text/html,x", "mxc://a/b", "", "#top"]
)
def test_unsafe_or_odd_links_are_their_text(href: str) -> None:
    assert to_slack(f'<a href="{href}">label</a>') == "label"


def test_link_inside_link_is_text() -> None:
    assert to_slack('<a href="https://a.org">x <a href="https://b.org">y</a></a>') == (
        "<https://a.org|x y>"
    )
    assert to_slack(f'<a href="https://a.org">x {ALICE}</a>') == "<https://a.org|x Alice>"


MATRIX_ALPHABET = [
    "<b>", "</b>", "<i>", "</i>", "<code>", "</code>", "<pre>", "</pre>", "<blockquote>",
    "</blockquote>", "<ul>", "<li>", "</li>", "</ul>", "<ol>", "<br>", "<p>", "</p>",
    "<a href='javascript:x'>", "<a href='https://x.org'>", "</a>", ALICE, "@room", "@channel",
    "@here", "&lt;!channel&gt;", "&lt;@U1&gt;", "&amp;", "<", ">", "a", " ", "\n", "*", "`",
    "<mx-reply>", "</mx-reply>", "<script>", "</script>", "|",
]  # fmt: skip


def test_fuzzed_matrix_html_never_makes_a_room_mention_without_power() -> None:
    rng = random.Random(21)
    for _ in range(3000):
        html = "".join(rng.choice(MATRIX_ALPHABET) for _ in range(rng.randint(1, 30)))
        text = to_slack(html)
        assert "<!" not in text
        assert not re.search(r"@(channel|here|everyone)\b", text, re.IGNORECASE), (html, text)
        # Every "<" is one the converter wrote: a user pill or a safe link.
        for piece in text.split("<")[1:]:
            assert piece.startswith(("@U1>", "https://x.org")), (html, text)


@pytest.mark.parametrize(
    "html",
    [
        "<b>" * 30_000 + "x",
        "<blockquote>" * 8_000 + "x",
        "<ul><li>" * 12_000 + "x",
        "<blockquote>x" * 8_000,
        "<b>a</b><i> </i>" * 6_000,
        "<b>" * 16_000 + "</x>" * 12_000,
        "a &lt; b @room " * 7_000,
        "<pre>" + "x\n" * 50_000 + "</pre>",
        "a<b>b</b>" * 12_000,  # every pair dropped
        "<b>a</b><i>b</i><s>c</s>" * 5_000,  # one long run of adjacent pairs
        "x" + "<b><i><s>a</s></i></b>" * 5_000,
        "*a_ ~" * 20_000,  # literal markers, every one a candidate
        "<span data-mx-spoiler>" * 10_000 + "x",
    ],
    ids=lambda html: repr(html[:14]),
)
def test_long_matrix_input_is_linear(html: str) -> None:
    # This thread's CPU time: wall time on a loaded machine says little about the algorithm.
    start = time.thread_time()
    matrix_to_mrkdwn("", html, NAMES)
    assert time.thread_time() - start < 2.0


@pytest.mark.parametrize("body", ["*a* " * 25_000, "`" * 100_000, "_" * 100_000, "a*b_" * 25_000])
def test_long_plain_body_is_linear(body: str) -> None:
    start = time.thread_time()
    matrix_to_mrkdwn(body)
    assert time.thread_time() - start < 2.0


def test_deep_quotes_get_a_bounded_prefix() -> None:
    text = to_slack("<blockquote>" * 100 + "x")
    assert text == "> " * 16 + "x"


# =========================================================================== round trips


@pytest.mark.parametrize(
    "text",
    [
        "hi <@U1>, see <#C1> and <https://x.org/a_b|the doc>",
        "*bold* _it_ ~s~ `code *x*`",
        "a &lt; b &amp;&amp; c",
        "<https://x.org/?a=1&amp;b=2>",
        "&gt; quoted *line*\nnext",
        "• a\n• *b*",
        "1. a\n2. b",
        "• a\n    ◦ b\n• c",
        "```\nblock &lt;x&gt; *y*\n```",
        "*bold with <@U1>*",
        "`<@U1>`",
    ],
)
def test_slack_to_matrix_to_slack(text: str) -> None:
    body, html = to_matrix(text)
    back = matrix_to_mrkdwn(body, html, NAMES)
    expected = text.replace("`<@U1>`", "`@Alice`").replace("&gt; quoted", "> quoted")
    assert back == expected


def test_slack_to_matrix_to_slack_keeps_bodies_without_html() -> None:
    body, html = to_matrix("plain &lt;text&gt; :tada:")
    assert html is None
    assert matrix_to_mrkdwn(body, html, NAMES) == "plain &lt;text&gt; 🎉"


@pytest.mark.parametrize(
    "html",
    [
        f"{ALICE}: <strong>hi</strong> <em>there</em>",
        '<a href="https://x.org/a_b">doc</a> and <code>x</code>',
        "<blockquote>q</blockquote>after",
        "<ul><li>a</li><li>b</li></ul>",
        '<ol start="2"><li>a</li><li>b</li></ol>',
        "<ul><li>a<ol><li>b</li></ol></li><li>c</li></ul>",
        "<pre><code>x &lt; y</code></pre>",
        "<strong>a</strong> &lt;!channel&gt; b",
    ],
)
def test_matrix_to_slack_to_matrix(html: str) -> None:
    text = to_slack(html)
    assert to_matrix(text)[1] == html


# =========================================================================== edges


def test_empty_inputs() -> None:
    assert mrkdwn_to_matrix("") == ("", None)
    assert matrix_to_mrkdwn("") == ""
    assert matrix_to_mrkdwn("body", "") == ""
    assert matrix_to_mrkdwn("", "<p></p><br>") == ""


def test_link_with_empty_label_shows_the_url() -> None:
    assert to_matrix("<https://x.org|>") == (
        "https://x.org",
        '<a href="https://x.org">https://x.org</a>',
    )


def test_link_url_with_spaces_or_controls_is_not_linked() -> None:
    assert "href" not in (to_matrix("<https://x.org/a b|x>")[1] or "")
    assert "href" not in (to_matrix("<https://x.org/\x01|x>")[1] or "")


def test_plain_body_room_mention_with_power() -> None:
    assert matrix_to_mrkdwn("@room look", may_mention_room=True) == "<!channel> look"
    assert matrix_to_mrkdwn("@room look", may_mention_room=True, room_mention="here") == (
        "<!here> look"
    )
