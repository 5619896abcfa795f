"""Specification of Slack mrkdwn -> Matrix HTML (bridges.slack.mrkdwn_to_html, names,
emoji_codes), read through the front door bridges.slack.mrkdwn. The other direction is in
test_html_to_mrkdwn.py."""

from __future__ import annotations

import random
import time

import pytest

from bridges.slack.mrkdwn import (
    emoji_name,
    emoji_unicode,
    mentioned_ids,
    mrkdwn_to_matrix,
    pill_href,
)
from tests.slack.mrkdwn_spec import ALICE, NAMES, assert_safe, html_of, to_matrix

pytestmark = pytest.mark.engine_independent

# =========================================================================== Slack -> Matrix
# ---------------------------------------------------------------------------- text, escaping


def test_plain_text_has_no_html() -> None:
    assert to_matrix("hello world") == ("hello world", None)


def test_slack_escapes_are_decoded_in_the_body() -> None:
    assert to_matrix("a &lt; b &amp;&amp; c &gt; d") == ("a < b && c > d", None)


def test_slack_escapes_are_decoded_once() -> None:
    assert to_matrix("&amp;lt;b&amp;gt; &amp;amp;")[0] == "&lt;b&gt; &amp;"
    assert html_of("*&amp;lt;b&amp;gt;*") == "<strong>&amp;lt;b&amp;gt;</strong>"


def test_other_html_entities_are_literal_text() -> None:
    body, html = to_matrix("*&quot; &#60; &nbsp;*")
    assert body == "*&quot; &#60; &nbsp;*"
    assert html == "<strong>&amp;quot; &amp;#60; &amp;nbsp;</strong>"


def test_escaped_characters_are_escaped_again_in_html() -> None:
    assert html_of("*a &lt;b&gt; &amp; c*") == "<strong>a &lt;b&gt; &amp; c</strong>"


def test_newlines_become_br_when_html_is_needed() -> None:
    assert to_matrix("*a*\nb\n\nc") == ("*a*\nb\n\nc", "<strong>a</strong><br>b<br><br>c")


def test_newlines_alone_need_no_html() -> None:
    assert to_matrix("a\nb") == ("a\nb", None)


# ---------------------------------------------------------------------------- inline markers


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*bold*", "<strong>bold</strong>"),
        ("_italic_", "<em>italic</em>"),
        ("~strike~", "<del>strike</del>"),
        ("a *b c* d", "a <strong>b c</strong> d"),
        ("(*bold*), _it_.", "(<strong>bold</strong>), <em>it</em>."),
        ("*_both_*", "<strong><em>both</em></strong>"),
        ("_*both*_", "<em><strong>both</strong></em>"),
        ("*bold _and it_ ~and s~*", "<strong>bold <em>and it</em> <del>and s</del></strong>"),
        ("*a* *b*", "<strong>a</strong> <strong>b</strong>"),
    ],
)
def test_markers(text: str, html: str) -> None:
    body, formatted = to_matrix(text)
    assert body == text
    assert formatted == html
    assert_safe(formatted)


@pytest.mark.parametrize(
    "text",
    [
        "*unclosed",
        "unopened*",
        "a * b * c",  # spaces inside the markers
        "2*3*4",  # inside words
        "snake_case_name",
        "__init__",
        "**double**",
        "~~double~~",
        "* item",
        "*",
        "**",
        "*a\nb*",  # markers do not span lines
        "file_name_v2.txt and x_y",
        "a*b* c",
        "*b*c",
    ],
)
def test_markers_that_are_literal(text: str) -> None:
    body, html = to_matrix(text)
    assert body == text
    assert html is None or "<strong>" not in html and "<em>" not in html


def test_crossed_markers_pair_the_first_closer_and_leave_the_rest_literal() -> None:
    assert html_of("*a _b* c_") == "<strong>a _b</strong> c_"
    assert html_of("_a *b_ c*") == "<em>a *b</em> c*"


def test_markers_pair_nearest_first() -> None:
    assert html_of("*a *b* c*") == "<strong>a <strong>b</strong> c</strong>"


def test_markers_around_atoms() -> None:
    assert html_of("*<@U1>*") == f"<strong>{ALICE}</strong>"
    assert html_of("_<https://x.org|x>_") == '<em><a href="https://x.org">x</a></em>'
    assert html_of("*bold `code`*") == "<strong>bold <code>code</code></strong>"


# ---------------------------------------------------------------------------- code


def test_code_span_has_nothing_formatted_inside() -> None:
    assert to_matrix("`*a* _b_ :smile: &lt;i&gt;`") == (
        "`*a* _b_ :smile: <i>`",
        "<code>*a* _b_ :smile: &lt;i&gt;</code>",
    )


def test_code_span_shows_mentions_and_links_as_text() -> None:
    html = html_of("`<@U1> <#C1> <https://x.org/a_b> <!here>`")
    assert html == "<code>@Alice #general https://x.org/a_b @room</code>"


def test_unclosed_backtick_is_literal() -> None:
    assert to_matrix("a `b *c*")[1] == "a `b <strong>c</strong>"


def test_empty_code_span_is_literal() -> None:
    assert to_matrix("``") == ("``", None)


def test_code_block() -> None:
    text = "```\nif a < b:\n    *x* = _y_\n```"
    body, html = to_matrix(text.replace("<", "&lt;"))
    assert body == text
    assert html == "<pre><code>if a &lt; b:\n    *x* = _y_</code></pre>"


def test_code_block_inline_with_text() -> None:
    assert html_of("before ```mid``` after") == "before <pre><code>mid</code></pre> after"


def test_code_block_between_lines() -> None:
    assert html_of("a\n```\nc\n```\nb") == "a<pre><code>c</code></pre>b"


def test_code_block_mentions_are_text_and_script_is_escaped() -> None:
    html = html_of("```<@U1> &lt;script&gt;alert(1)&lt;/script&gt;```")
    assert html == "<pre><code>@Alice &lt;script&gt;alert(1)&lt;/script&gt;</code></pre>"


def test_code_block_keeps_backticks_and_emoji_codes() -> None:
    assert html_of("```a `b` :smile:```") == "<pre><code>a `b` :smile:</code></pre>"


def test_unclosed_fence_is_literal() -> None:
    body, html = to_matrix("```not code *b*")
    assert body == "```not code *b*"
    assert html == "```not code <strong>b</strong>"


def test_empty_fence_is_literal() -> None:
    assert to_matrix("``````") == ("``````", None)


def test_third_fence_is_literal() -> None:
    assert html_of("```a``` ```b") == "<pre><code>a</code></pre> ```b"


# ---------------------------------------------------------------------------- quotes, lists


def test_consecutive_quote_lines_are_one_blockquote() -> None:
    body, html = to_matrix("&gt; one\n&gt; *two*\nafter")
    assert body == "> one\n> *two*\nafter"
    assert html == "<blockquote>one<br><strong>two</strong></blockquote>after"


def test_quote_runs_are_separate() -> None:
    assert html_of("&gt; a\nb\n&gt; c") == "<blockquote>a</blockquote>b<blockquote>c</blockquote>"


def test_raw_greater_than_also_quotes() -> None:
    assert html_of("> a") == "<blockquote>a</blockquote>"


def test_empty_quote_line() -> None:
    assert html_of("&gt; a\n&gt;\n&gt; b") == "<blockquote>a<br><br>b</blockquote>"


def test_triple_quote_quotes_the_rest_of_the_message() -> None:
    body, html = to_matrix("&gt;&gt;&gt; a\nb\n&gt; c")
    assert body == ">>> a\nb\n> c"
    assert html == "<blockquote>a<br>b<br>&gt; c</blockquote>"


def test_greater_than_inside_a_line_does_not_quote() -> None:
    assert to_matrix("a &gt; b") == ("a > b", None)


def test_quoted_code_block() -> None:
    assert html_of("&gt; ```x```\ny") == "<blockquote><pre><code>x</code></pre></blockquote>y"


def test_bullet_lists() -> None:
    body, html = to_matrix("• a\n• *b*\n- c")
    assert body == "• a\n• *b*\n- c"
    assert html == "<ul><li>a</li><li><strong>b</strong></li><li>c</li></ul>"


def test_nested_list_by_four_spaces() -> None:
    html = html_of("• a\n    ◦ b\n        ▪ c\n• d")
    assert html == "<ul><li>a<ul><li>b<ul><li>c</li></ul></li></ul></li><li>d</li></ul>"
    assert_safe(html)


def test_list_levels_never_jump() -> None:
    html = html_of("            • deep first\n• a")
    assert html == "<ul><li>deep first</li><li>a</li></ul>"


def test_list_between_text() -> None:
    assert html_of("intro\n• a\nouttro") == "intro<ul><li>a</li></ul>outtro"


def test_list_inside_quote() -> None:
    assert html_of("&gt; • a\n&gt; • b") == "<blockquote><ul><li>a</li><li>b</li></ul></blockquote>"


def test_ordered_lists() -> None:
    assert to_matrix("1. a\n2. *b*") == (
        "1. a\n2. *b*",
        "<ol><li>a</li><li><strong>b</strong></li></ol>",
    )
    assert html_of("3) a\n4) b") == '<ol start="3"><li>a</li><li>b</li></ol>'


def test_mixed_and_nested_lists() -> None:
    html = html_of("• a\n    1. b\n    2. c\n• d\n1. e")
    assert html == ("<ul><li>a<ol><li>b</li><li>c</li></ol></li><li>d</li></ul><ol><li>e</li></ol>")
    assert_safe(html)


def test_nested_list_kind_changes_inside_a_level() -> None:
    html = html_of("• a\n    ◦ b\n    1. c\n• d")
    assert html == "<ul><li>a<ul><li>b</li></ul><ol><li>c</li></ol></li><li>d</li></ul>"
    assert_safe(html)


@pytest.mark.parametrize(
    "text",
    ["-5 degrees", "--flag", "a - b", "•no space", "1.5 litres", "2024. was", "1234567890. x"],
)
def test_not_lists(text: str) -> None:
    assert to_matrix(text) == (text, None)


# ---------------------------------------------------------------------------- emoji


@pytest.mark.parametrize(
    ("code", "char"),
    [
        (":smile:", "😄"),
        (":+1:", "👍"),
        (":thumbsup:", "👍"),
        (":-1:", "👎"),
        (":white_check_mark:", "✅"),
        (":tada:", "🎉"),
        (":simple_smile:", "🙂"),  # Slack's own name
        (":the_horns:", "🤘"),
        (":large_green_circle:", "🟢"),
        (":man-shrugging:", "🤷\u200d♂️"),  # Slack's hyphens
        (":flag-de:", "🇩🇪"),
        (":flag-england:", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"),
        (":man-woman-boy:", "👨\u200d👩\u200d👦"),
        (":wave::skin-tone-3:", "👋🏼"),
        (":+1::skin-tone-6:", "👍🏿"),
    ],
)
def test_emoji_shortcodes_become_unicode(code: str, char: str) -> None:
    assert to_matrix(f"hi {code}!") == (f"hi {char}!", None)


@pytest.mark.parametrize(
    "text",
    [":party_parrot:", ":not_an_emoji_at_all:", "10:30:45", "a: b :", ":smile", ":flag-zz1:"],
)
def test_unknown_and_custom_shortcodes_stay_text(text: str) -> None:
    assert to_matrix(text) == (text, None)


def test_a_failed_shortcode_lets_its_closing_colon_open_the_next() -> None:
    assert to_matrix("see:party:smile:") == ("see:party😄", None)


def test_unknown_skin_tone_stays_text() -> None:
    assert to_matrix(":party_parrot::skin-tone-3:")[0] == ":party_parrot::skin-tone-3:"


def test_custom_emoji_names_are_not_formatted() -> None:
    assert to_matrix(":_my_emoji_:") == (":_my_emoji_:", None)


def test_emoji_inside_formatting() -> None:
    assert html_of("*yes :tada:*") == "<strong>yes 🎉</strong>"


@pytest.mark.parametrize(
    ("char", "name"),
    [("👍", "+1"), ("😄", "smile"), ("🎉", "tada"), ("👍🏽", "+1::skin-tone-4"), ("❤️", "heart")],
)
def test_emoji_name_for_reactions(char: str, name: str) -> None:
    assert emoji_name(char) == name
    assert emoji_unicode(name) is not None
    assert emoji_unicode(name).replace("\ufe0f", "") == char.replace("\ufe0f", "")


def test_emoji_name_and_unicode_of_unknowns() -> None:
    assert emoji_name("x") is None
    assert emoji_unicode("party_parrot") is None
    assert emoji_unicode("party_parrot::skin-tone-2") is None
    assert emoji_unicode("smile::skin-tone-9") is None


# ---------------------------------------------------------------------------- mentions


def test_user_mention_becomes_a_pill() -> None:
    assert to_matrix("hi <@U1>!") == ("hi Alice!", f"hi {ALICE}!")


def test_user_mention_label_is_ignored_when_resolved() -> None:
    assert to_matrix("<@U1|old name>")[0] == "Alice"


def test_user_display_name_is_escaped() -> None:
    body, html = to_matrix("<@U2>")
    assert body == "Bob <the> & co"
    assert html == '<a href="https://matrix.to/#/@bob:hs.test">Bob &lt;the&gt; &amp; co</a>'


def test_unresolved_user_falls_back_to_label_then_id() -> None:
    assert to_matrix("<@U9|carol>") == ("@carol", None)
    assert to_matrix("<@U9>") == ("@U9", None)


def test_user_without_mxid_is_a_name() -> None:
    assert to_matrix("<@W3>") == ("@nomxid", None)


def test_channel_mentions() -> None:
    assert to_matrix("<#C1|general>") == (
        "#general",
        '<a href="https://matrix.to/#/%23slack_c1:hs.test">#general</a>',
    )
    assert html_of("<#C2>") == '<a href="https://matrix.to/#/!room:hs.test">#random</a>'
    assert html_of("<#C3>") == '<a href="https://example.org/room">#linked</a>'
    assert to_matrix("<#C4>") == ("#unbridged", None)
    assert to_matrix("<#C9|elsewhere>") == ("#elsewhere", None)
    assert to_matrix("<#C9>") == ("#C9", None)


@pytest.mark.parametrize(
    ("text", "body"),
    [
        # Matrix has one word for Slack's three; whether it pings is m.mentions.room, which
        # the connector sets from mentioned_ids().specials.
        ("<!here>", "@room"),
        ("<!channel>", "@room"),
        ("<!everyone>", "@room"),
        ("<!here|here>", "@room"),
        ("<!channel|@channel>", "@room"),
        # A user group has no Matrix counterpart: its handle, as plain text.
        ("<!subteam^S123|@team>", "@team"),
        ("<!subteam^S123|team>", "@team"),
        ("<!subteam^S123>", "@S123"),
        (
            "<!date^1392734382^{date_pretty}|Posted 2014-02-18 6:39:42 AM PST>",
            "Posted 2014-02-18 6:39:42 AM PST",
        ),
        ("<!date^1392734382^{date}>", "2014-02-18 14:39 UTC"),
        ("<!date^bad^{date}>", ""),
        ("<!unknown|label>", "label"),
        ("<!unknown>", "<!unknown>"),
    ],
)
def test_special_mentions_are_text(text: str, body: str) -> None:
    assert to_matrix(text) == (body, None)


def test_special_mentions_inside_formatting_are_text_not_pills() -> None:
    assert to_matrix("*<!channel>* look") == ("*@room* look", "<strong>@room</strong> look")
    assert html_of("_<!subteam^S1|@ops>_") == "<em>@ops</em>"
    assert to_matrix("*<!subteam^S1|&lt;b&gt;>*") == ("*@<b>*", "<strong>@&lt;b&gt;</strong>")


def test_mentioned_ids_lists_each_once_in_order_code_included() -> None:
    text = "<@U2> <#C1|x> <@U1> `<@U3>` <!here> <!subteam^S1|@t> <@U2|b> <!channel> <@nope>"
    assert mentioned_ids(text) == (["U2", "U1", "U3"], ["C1"], ["S1"], ["here", "channel"])


def test_without_names_mentions_fall_back() -> None:
    assert mrkdwn_to_matrix("<@U1|alice> <#C1|general>") == ("@alice #general", None)


# ---------------------------------------------------------------------------- links


def test_bare_link() -> None:
    assert to_matrix("<https://example.org/a_b_c>") == (
        "https://example.org/a_b_c",
        '<a href="https://example.org/a_b_c">https://example.org/a_b_c</a>',
    )


def test_labelled_link() -> None:
    assert to_matrix("<https://example.org|the site>") == (
        "the site (https://example.org)",
        '<a href="https://example.org">the site</a>',
    )


def test_link_label_that_is_the_domain_shows_once() -> None:
    assert to_matrix("<http://example.com|example.com>")[0] == "example.com"
    assert to_matrix("<mailto:a@b.org|a@b.org>") == (
        "a@b.org",
        '<a href="mailto:a@b.org">a@b.org</a>',
    )


def test_link_with_escaped_ampersand() -> None:
    assert html_of("<https://x.org/?a=1&amp;b=2|q &amp; a>") == (
        '<a href="https://x.org/?a=1&amp;b=2">q &amp; a</a>'
    )


def test_link_underscores_are_not_markers() -> None:
    assert html_of("_see <https://x.org/_a_/b_c|x_y>_") == (
        '<em>see <a href="https://x.org/_a_/b_c">x_y</a></em>'
    )


def test_bare_url_underscores_are_not_markers() -> None:
    assert to_matrix("https://x.org/_a_/*b*") == ("https://x.org/_a_/*b*", None)
    assert html_of("_see https://x.org/a_b_") == "<em>see https://x.org/a_b</em>"


# ---------------------------------------------------------------------------- injection


@pytest.mark.parametrize(
    "text",
    [
        "<javascript:alert(1)|click>",
        "<javascript:alert(1)>",
        "<JavaScript:alert(1)|click>",
        "<data:text/html,<b>|x>",
        "<vbscript:msgbox|x>",
        "<slack://open|open>",
    ],
)
def test_unsafe_schemes_are_never_links(text: str) -> None:
    body, html = to_matrix(text)
    assert html is None or "href" not in html
    assert "<a" not in (html or "")


def test_javascript_link_shows_label_and_url_as_text() -> None:
    body, html = to_matrix("*<javascript:alert(1)|click>*")
    assert body == "*click (javascript:alert(1))*"
    assert html == "<strong>click (javascript:alert(1))</strong>"


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "*<script>alert(1)</script>*",
        "*&lt;script&gt;alert(1)&lt;/script&gt;*",
        '*"><img src=x onerror=alert(1)>*',
        '<https://x.org/"><img src=x onerror=alert(1)>|x>',
        '<https://x.org/"onmouseover=alert(1) x="|y> *b*',
        "`<img src=x onerror=alert(1)>`",
        "```<iframe src=javascript:alert(1)>```",
        "&gt; <svg onload=alert(1)>",
        "• <b onclick=alert(1)>x</b>",
        "<@U1|<script>> *b*",
        "<!subteam^S1|<img src=x>> *b*",
        "<!date^1^x|<img src=x>> *b*",
        # HTML typed on Slack arrives as Slack escapes, or raw from a careless integration.
        '<a href="javascript:alert(1)">x</a> *b*',
        '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt; *b*',
        # Entity games: double escaping, numeric and named HTML entities are text.
        "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; *b*",
        "&#60;script&#62;alert(1)&#60;/script&#62; *b*",
        "&amp;#x3C;img src=x onerror=alert(1)&amp;#x3E; *b*",
        "&lt;<https://x.org|y>&gt; *b*",
        # Nested or quoted link syntax.
        '<https://x.org|<a href="javascript:x">y</a>> *b*',
        "<https://x.org|<https://evil.org|y>> *b*",
        "<https://x.org/'onmouseover='alert(1)|it's> *b*",
        '<https://x.org|x" onclick="alert(1)> *b*',
        '<mailto:a@b.org"><script>x</script>|m> *b*',
        "< javascript:alert(1)|x> *b*",
        "<java&amp;#115;cript:alert(1)|x> *b*",
        "<javascript&#58;alert(1)|x> *b*",
    ],
)
def test_injected_markup_reaches_matrix_escaped(text: str) -> None:
    body, html = to_matrix(text)
    assert_safe(html)
    for bad in ("<script", "<img", "<iframe", "<svg", "<b ", "onerror=alert(1)>"):
        assert bad not in (html or "").replace("&lt;", "<!").lower()


@pytest.mark.parametrize(
    ("text", "body", "html"),
    [
        ("&amp;lt;b&amp;gt;", "&lt;b&gt;", None),
        ("*&amp;lt;b&amp;gt;*", "*&lt;b&gt;*", "<strong>&amp;lt;b&amp;gt;</strong>"),
        ("*&#60;b&#62;*", "*&#60;b&#62;*", "<strong>&amp;#60;b&amp;#62;</strong>"),
        ("*&lt;b&gt;*", "*<b>*", "<strong>&lt;b&gt;</strong>"),
        (
            '*<https://x.org|x" onclick="y>*',
            '*x" onclick="y (https://x.org)*',
            '<strong><a href="https://x.org">x" onclick="y</a></strong>',
        ),
        (  # the innermost <...> is the link, as on Slack; the rest is text
            "*<https://x.org|<https://evil.org|y>>*",
            "*<https://x.org|y (https://evil.org)>*",
            '<strong>&lt;https://x.org|<a href="https://evil.org">y</a>&gt;</strong>',
        ),
        (
            "*<javascript&#58;alert(1)|x>*",
            "*<javascript&#58;alert(1)|x>*",
            "<strong>&lt;javascript&amp;#58;alert(1)|x&gt;</strong>",
        ),
    ],
)
def test_entity_and_nesting_games_come_out_as_the_text_slack_shows(
    text: str, body: str, html: str | None
) -> None:
    assert to_matrix(text) == (body, html)


def test_link_href_quotes_are_escaped() -> None:
    html = html_of('<https://x.org/"onmouseover=alert(1)|y>')
    assert html == '<a href="https://x.org/&quot;onmouseover=alert(1)">y</a>'


def test_pill_href_encodes_alias_hash() -> None:
    assert pill_href("#a:b") == "https://matrix.to/#/%23a:b"
    assert pill_href("@u:b") == "https://matrix.to/#/@u:b"


SLACK_ALPHABET = [
    "*", "_", "~", "`", "```", "\n", " ", "a", "b", "&gt;", "&lt;", "&amp;", "<", ">", "|",
    ":", "smile", "<@U1>", "<#C1>", "<!here>", "<https://x.org/a_b|l>", "<javascript:x|y>",
    "• ", "- ", "1. ", "7) ", "    ", "\"", "'", "<script>", "onerror=", "http://h/_x_", ":+1:",
]  # fmt: skip


def test_fuzzed_slack_text_always_gives_safe_well_nested_html() -> None:
    rng = random.Random(21)
    for _ in range(3000):
        text = "".join(rng.choice(SLACK_ALPHABET) for _ in range(rng.randint(1, 30)))
        body, html = to_matrix(text)
        assert isinstance(body, str)
        assert_safe(html)


# ---------------------------------------------------------------------------- scale


@pytest.mark.parametrize(
    "text",
    [
        "*" * 100_000,
        "*a " * 33_000,
        "*a _b ~c " * 11_000,
        "_a " * 17_000 + "a* " * 17_000,
        "<" * 100_000,
        "<a" * 50_000,
        "`" * 100_000,
        "`a\n" * 33_000,
        ":" * 100_000,
        ":a" * 50_000,
        ":" + "a" * 100_000,
        "&gt; x\n" * 14_000,
        "• x\n" * 25_000,
        "```" * 33_000,
        "*_~`<:&" * 14_000,
        "http://" + "_a" * 50_000,
        "".join(" " * (4 * (i % 200)) + "- x\n" for i in range(2_000)),
    ],
    ids=lambda text: repr(text[:12]),
)
def test_long_slack_input_is_linear(text: str) -> None:
    # This thread's CPU time: wall time on a loaded machine says little about the algorithm.
    start = time.thread_time()
    mrkdwn_to_matrix(text, NAMES)
    assert time.thread_time() - start < 2.0
