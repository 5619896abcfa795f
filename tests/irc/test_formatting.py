"""Specification of bridges.irc.mirc, mirc_to_html, html_to_mirc (codes <-> HTML) and mentions."""

from __future__ import annotations

import random
from html.parser import HTMLParser

import pytest

from bridges.irc.html_to_mirc import html_to_irc, nearest_irc_colour
from bridges.irc.mentions import find_mentions, find_nick_mentions
from bridges.irc.mirc import IRC_PALETTE, strip_irc_formatting
from bridges.irc.mirc_to_html import irc_to_html

B, C, H, RST, M, R, IT, S, U = (
    "\x02",
    "\x03",
    "\x04",
    "\x0f",
    "\x11",
    "\x16",
    "\x1d",
    "\x1e",
    "\x1f",
)


class _NestingChecker(HTMLParser):
    """Asserts that generated HTML is properly nested."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "br":
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"mis-nested </{tag}> in {self.stack}"
        self.stack.pop()


def assert_well_nested(html: str) -> None:
    checker = _NestingChecker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed tags {checker.stack}"


# =========================================================================== IRC -> HTML


def test_plain_text_has_no_formatted_body() -> None:
    assert irc_to_html("hello world") == ("hello world", None)


def test_plain_text_with_html_characters_has_no_formatted_body() -> None:
    # The body is plain text, so it is not escaped; there is nothing to format.
    assert irc_to_html("a < b && c > d") == ("a < b && c > d", None)


@pytest.mark.parametrize(
    ("code", "tag"),
    [(B, "b"), (IT, "i"), (U, "u"), (S, "del"), (M, "code")],
)
def test_toggle_codes_map_to_tags(code: str, tag: str) -> None:
    assert irc_to_html(f"a {code}b{code} c") == ("a b c", f"a <{tag}>b</{tag}> c")


def test_unterminated_formatting_is_closed_at_the_end() -> None:
    assert irc_to_html(f"{B}bold") == ("bold", "<b>bold</b>")


def test_reset_closes_everything() -> None:
    assert irc_to_html(f"{B}{IT}both{RST} none") == ("both none", "<b><i>both</i></b> none")


def test_overlapping_ranges_are_emitted_properly_nested() -> None:
    plain, html = irc_to_html(f"{B}bold {IT}both{B} italic{IT} plain")
    assert plain == "bold both italic plain"
    assert html == "<b>bold <i>both</i></b><i> italic</i> plain"
    assert_well_nested(html)


def test_codes_without_text_produce_no_formatting() -> None:
    assert irc_to_html(f"{B}{B}{IT}{IT}x{C}04{C}") == ("x", None)


def test_foreground_colour() -> None:
    assert irc_to_html(f"{C}04red{C} plain") == (
        "red plain",
        '<font data-mx-color="#ff0000">red</font> plain',
    )


def test_single_digit_colour() -> None:
    assert irc_to_html(f"{C}4red")[1] == '<font data-mx-color="#ff0000">red</font>'


def test_foreground_and_background_colour() -> None:
    assert irc_to_html(f"{C}1,8warn")[1] == (
        '<font data-mx-color="#000000" data-mx-bg-color="#ffff00">warn</font>'
    )


def test_colour_code_takes_at_most_two_digits() -> None:
    assert irc_to_html(f"{C}0412345") == ("12345", '<font data-mx-color="#ff0000">12345</font>')


def test_comma_without_background_digits_is_literal_text() -> None:
    assert irc_to_html(f"{C}04,text") == (",text", '<font data-mx-color="#ff0000">,text</font>')


def test_bare_colour_code_resets_colours() -> None:
    assert irc_to_html(f"{C}04,01red{C}plain")[1] == (
        '<font data-mx-color="#ff0000" data-mx-bg-color="#000000">red</font>plain'
    )


def test_foreground_change_keeps_background() -> None:
    assert irc_to_html(f"{C}04,01a{C}12b")[1] == (
        '<font data-mx-color="#ff0000" data-mx-bg-color="#000000">a</font>'
        '<font data-mx-color="#0000fc" data-mx-bg-color="#000000">b</font>'
    )


def test_extended_palette_colour() -> None:
    assert irc_to_html(f"{C}52x")[1] == '<font data-mx-color="#ff0000">x</font>'
    assert irc_to_html(f"{C}98x")[1] == '<font data-mx-color="#ffffff">x</font>'


def test_colour_99_means_default() -> None:
    assert irc_to_html(f"{C}99,99x") == ("x", None)


def test_hex_colour() -> None:
    assert irc_to_html(f"{H}FF8800orange{H} x")[1] == (
        '<font data-mx-color="#ff8800">orange</font> x'
    )


def test_hex_colour_with_background() -> None:
    assert irc_to_html(f"{H}000000,FFFFFFx")[1] == (
        '<font data-mx-color="#000000" data-mx-bg-color="#ffffff">x</font>'
    )


def test_reverse_is_ignored() -> None:
    assert irc_to_html(f"{R}rev{R}") == ("rev", None)


def test_colour_inside_bold_nests_properly() -> None:
    plain, html = irc_to_html(f"{B}a{C}04b{B}c")
    assert plain == "abc"
    assert_well_nested(html or "")


def test_script_tag_in_irc_text_is_escaped() -> None:
    plain, html = irc_to_html(f"{B}<script>alert(1)</script>")
    assert plain == "<script>alert(1)</script>"
    assert html == "<b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"


def test_attribute_breakout_attempt_is_escaped() -> None:
    _, html = irc_to_html(f'{B}"><img src=x onerror=alert(1)>')
    assert html is not None and "<img" not in html
    assert "&lt;img" in html


def test_ampersands_and_entities_are_escaped_in_html() -> None:
    assert irc_to_html(f"{B}&amp;")[1] == "<b>&amp;amp;</b>"


def test_random_code_soup_always_nests_and_strips() -> None:
    rng = random.Random(99)
    pieces = [
        B,
        IT,
        U,
        S,
        M,
        RST,
        R,
        C,
        f"{C}4",
        f"{C}04,12",
        f"{C}99",
        f"{H}ABCDEF",
        ",",
        "1",
        "x",
        "<",
    ]
    for _ in range(500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        plain, html = irc_to_html(text)
        assert plain == strip_irc_formatting(text)
        if html is not None:
            assert_well_nested(html)
            assert "<script" not in html and "<<" not in html


# --------------------------------------------------------------------------- strip


def test_strip_removes_all_codes_and_colour_parameters() -> None:
    text = f"{B}b{B} {C}04,12c{C} {H}FF00FFh {IT}i{U}u{S}s{M}m{R}r{RST}"
    assert strip_irc_formatting(text) == "b c h iusmr"


def test_strip_keeps_digits_after_a_complete_colour_code() -> None:
    assert strip_irc_formatting(f"{C}04123") == "123"


def test_strip_leaves_plain_text_alone() -> None:
    assert strip_irc_formatting("a,b 1,2 <b>") == "a,b 1,2 <b>"


# =========================================================================== HTML -> IRC


def test_plain_html_text_passes_through() -> None:
    assert html_to_irc("hello world") == "hello world"


def test_entities_are_decoded() -> None:
    assert html_to_irc("a &lt;b&gt; &amp; &quot;c&quot; &#x263a;") == 'a <b> & "c" ☺'


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("b", B),
        ("strong", B),
        ("i", IT),
        ("em", IT),
        ("u", U),
        ("s", S),
        ("del", S),
        ("strike", S),
        ("code", M),
    ],
)
def test_inline_tags_map_to_codes(tag: str, code: str) -> None:
    assert html_to_irc(f"a <{tag}>b</{tag}> c") == f"a {code}b{code} c"


def test_nested_same_format_does_not_toggle_off() -> None:
    assert html_to_irc("<b>a <strong>b</strong> c</b> d") == f"{B}a b c{B} d"


def test_formatting_at_end_of_text_is_not_needlessly_closed() -> None:
    assert html_to_irc("x <b>bold</b>") == f"x {B}bold"


def test_br_becomes_newline() -> None:
    assert html_to_irc("a<br>b<br/>c") == "a\nb\nc"


def test_paragraphs_become_lines() -> None:
    assert html_to_irc("<p>one</p>\n<p>two</p>") == "one\ntwo"


def test_html_whitespace_is_collapsed() -> None:
    assert html_to_irc("a   b\n\n\tc") == "a b c"


def test_leading_and_trailing_blank_lines_are_dropped() -> None:
    assert html_to_irc("<br><br><p>x</p><br>") == "x"


def test_formatting_is_reopened_on_each_line() -> None:
    # Each line is sent as its own PRIVMSG, so state cannot carry over.
    assert html_to_irc("<b>a<br>b</b>") == f"{B}a\n{B}b"


def test_link_with_different_text_appends_url() -> None:
    assert html_to_irc('<a href="https://example.org/x">docs</a>') == (
        "docs (https://example.org/x)"
    )


def test_link_whose_text_is_the_url_is_not_duplicated() -> None:
    assert html_to_irc('<a href="https://example.org/">https://example.org/</a>') == (
        "https://example.org/"
    )


def test_link_text_without_scheme_counts_as_same_url() -> None:
    assert html_to_irc('<a href="https://example.org">example.org</a>') == "example.org"


def test_mailto_link_with_address_text() -> None:
    assert html_to_irc('<a href="mailto:a@b.c">a@b.c</a>') == "a@b.c"


def test_link_without_text_shows_url() -> None:
    assert html_to_irc('<a href="https://e.org/"></a>') == "https://e.org/"


def test_link_href_cannot_inject_newlines() -> None:
    out = html_to_irc('<a href="https://e.org/&#13;&#10;QUIT :x">t</a>')
    assert "\r" not in out and "\n" not in out
    assert out == "t (https://e.org/QUIT:x)"


def test_user_pill_becomes_nick_from_callback() -> None:
    html = '<a href="https://matrix.to/#/@alice:example.org">Alice (Matrix)</a>: hi'
    seen: list[str] = []

    def to_nick(mxid: str) -> str | None:
        seen.append(mxid)
        return "alice_m"

    assert html_to_irc(html, pill_to_nick=to_nick) == "alice_m: hi"
    assert seen == ["@alice:example.org"]


def test_user_pill_falls_back_to_link_text() -> None:
    html = '<a href="https://matrix.to/#/@bob:example.org">Bob</a>: hi'
    assert html_to_irc(html, pill_to_nick=lambda _: None) == "Bob: hi"
    assert html_to_irc(html) == "Bob: hi"


def test_percent_encoded_pill_is_recognised() -> None:
    html = '<a href="https://matrix.to/#/%40carol%3Aexample.org">Carol</a>'
    assert html_to_irc(html, pill_to_nick=lambda m: m.upper()) == "@CAROL:EXAMPLE.ORG"


def test_matrix_uri_pill_is_recognised() -> None:
    html = '<a href="matrix:u/dave:example.org">Dave</a>'
    assert html_to_irc(html, pill_to_nick=lambda m: {"@dave:example.org": "dave"}[m]) == "dave"


def test_pill_callback_cannot_inject_newlines() -> None:
    html = '<a href="https://matrix.to/#/@e:x.y">E</a>'
    out = html_to_irc(html, pill_to_nick=lambda _: "evil\r\nQUIT :x\0")
    assert out == "evil QUIT :x"


def test_room_pill_keeps_alias_text_without_url() -> None:
    html = '<a href="https://matrix.to/#/#room:example.org">#room:example.org</a>'
    assert html_to_irc(html) == "#room:example.org"


def test_reply_fallback_is_dropped_entirely() -> None:
    html = (
        '<mx-reply><blockquote><a href="https://matrix.to/#/!r:x/$e">In reply to</a> '
        '<a href="https://matrix.to/#/@a:x">@a:x</a><br>original</blockquote></mx-reply>'
        "the answer"
    )
    assert html_to_irc(html) == "the answer"


def test_blockquote_lines_are_prefixed() -> None:
    assert html_to_irc("<blockquote>one<br>two</blockquote>after") == "> one\n> two\nafter"


def test_nested_blockquotes_stack_prefixes() -> None:
    html = "<blockquote>a<blockquote>b</blockquote></blockquote>"
    assert html_to_irc(html) == "> a\n> > b"


def test_unordered_list() -> None:
    assert html_to_irc("<ul><li>one</li><li>two</li></ul>") == "* one\n* two"


def test_ordered_list_numbers_items() -> None:
    assert html_to_irc("<ol><li>a</li><li>b</li></ol>") == "1. a\n2. b"


def test_ordered_list_honours_start() -> None:
    assert html_to_irc('<ol start="5"><li>a</li><li>b</li></ol>') == "5. a\n6. b"


def test_nested_list_is_indented() -> None:
    html = "<ul><li>one<ul><li>inner</li></ul></li><li>two</li></ul>"
    assert html_to_irc(html) == "* one\n  * inner\n* two"


def test_list_item_continuation_lines_are_indented() -> None:
    assert html_to_irc("<ol><li>a<br>b</li></ol>") == "1. a\n   b"


def test_pre_keeps_newlines_and_indentation_as_monospace_lines() -> None:
    html = "<pre><code>def f():\n    return 1\n</code></pre>"
    assert html_to_irc(html) == f"{M}def f():\n{M}    return 1"


def test_pre_with_blank_line_keeps_it() -> None:
    assert html_to_irc("<pre>a\n\nb</pre>") == f"{M}a\n\n{M}b"


def test_font_colour_maps_to_exact_mirc_colour() -> None:
    assert html_to_irc('<font data-mx-color="#ff0000">red</font>') == f"{C}04red"


def test_span_colour_with_background() -> None:
    html = '<span data-mx-color="#000000" data-mx-bg-color="#ffff00">x</span>'
    assert html_to_irc(html) == f"{C}01,08x"


def test_arbitrary_colour_maps_to_nearest_classic_colour() -> None:
    assert html_to_irc('<font data-mx-color="#f00010">x</font>') == f"{C}04x"


def test_colour_reset_before_digits_cannot_be_misread() -> None:
    out = html_to_irc('<font data-mx-color="#ff0000">a</font>1,2')
    assert out == f"{C}04a{C}99,991,2"
    assert strip_irc_formatting(out) == "a1,2"


def test_colour_before_comma_digit_text_cannot_absorb_it_as_background() -> None:
    out = html_to_irc('<font data-mx-color="#ff0000">,5 apples</font>')
    assert strip_irc_formatting(out) == ",5 apples"


def test_invalid_colour_attribute_is_ignored() -> None:
    assert html_to_irc('<font data-mx-color="red;x">a</font>') == "a"


def test_spoiler_is_black_on_black() -> None:
    assert html_to_irc("<span data-mx-spoiler>s</span>") == f"{C}01,01s"


def test_headings_are_bold_lines() -> None:
    assert html_to_irc("<h1>Title</h1>text") == f"{B}Title\ntext"


def test_image_becomes_alt_text() -> None:
    assert html_to_irc('<img src="mxc://x/y" alt=":party:"> yay') == ":party: yay"


def test_unknown_tags_keep_their_text() -> None:
    assert html_to_irc("<blink>a</blink> <sup>b</sup> <custom-x>c</custom-x>") == "a b c"


def test_script_and_style_content_is_dropped() -> None:
    assert html_to_irc("<script>alert(1)</script>x<style>p{}</style>") == "x"


def test_escaped_script_text_is_kept_as_text() -> None:
    assert html_to_irc("&lt;script&gt;alert(1)&lt;/script&gt;") == "<script>alert(1)</script>"


def test_unclosed_tags_do_not_break_output() -> None:
    assert html_to_irc("<b>bold <i>both") == f"{B}bold {IT}both"


def test_misnested_tags_close_inner_formatting() -> None:
    assert html_to_irc("<b>a<i>b</b>c</i>") == f"{B}a{IT}b{B}{IT}c"


def test_stray_end_tags_are_ignored() -> None:
    assert html_to_irc("</b>a</i></p>") == "a"


def test_crlf_and_nul_in_text_never_reach_output() -> None:
    out = html_to_irc("a&#13;&#10;QUIT :x\r\nJOIN #y\x00z")
    assert out == "a QUIT :x JOIN #yz"


def test_control_characters_from_html_are_removed() -> None:
    assert html_to_irc("\x01ACTION fake\x01 \x02x") == "ACTION fake x"


def test_cr_in_pre_becomes_a_line_break() -> None:
    assert html_to_irc("<pre>a\rb</pre>") == f"{M}a\n{M}b"


def test_random_html_never_contains_cr_or_nul() -> None:
    rng = random.Random(7)
    pieces = [
        "<b>",
        "</b>",
        "<i>",
        "<pre>",
        "</pre>",
        "<br>",
        "<p>",
        "</p>",
        "<li>",
        "<ol>",
        "</ul>",
        "<blockquote>",
        "<mx-reply>",
        "</mx-reply>",
        '<a href="https://matrix.to/#/@x:y">',
        '<a href="&#13;">',
        "</a>",
        '<font data-mx-color="#123456">',
        "</font>",
        "&#13;",
        "&#0;",
        "&#10;",
        "\r",
        "\n",
        "\x00",
        "text",
        "1",
        ",",
        " ",
        "<",
        "&",
        "<!--",
        "-->",
        "<!",
    ]
    for _ in range(1000):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        out = html_to_irc(html, pill_to_nick=lambda _: "n")
        assert "\r" not in out and "\x00" not in out
        assert not out.startswith("\n") and not out.endswith("\n")


def test_huge_html_is_converted() -> None:
    out = html_to_irc("<p>" + "<b>x</b> " * 5000 + "</p>")  # ~45 KB, near Matrix's event limit
    assert out.count("x") == 5000


def test_deeply_nested_html_does_not_recurse() -> None:
    out = html_to_irc("<span>" * 5000 + "deep" + "</span>" * 5000)
    assert out == "deep"


def test_irc_formatting_round_trips_through_html() -> None:
    original = f"{B}bold{B} {IT}it{IT} {C}04,12col{C} {M}mono{M}"
    _, html = irc_to_html(original)
    assert html is not None
    assert strip_irc_formatting(html_to_irc(html)) == strip_irc_formatting(original)
    assert html_to_irc(html) == original.rstrip(M)  # trailing closing code is unnecessary


# --------------------------------------------------------------------------- colours


def test_palette_has_99_colours() -> None:
    assert len(IRC_PALETTE) == 99
    assert IRC_PALETTE[0] == "#ffffff" and IRC_PALETTE[1] == "#000000"


@pytest.mark.parametrize("index", range(16))
def test_classic_colours_map_to_themselves(index: int) -> None:
    assert nearest_irc_colour(IRC_PALETTE[index]) == index


def test_extended_colour_exact_match_is_kept_when_no_classic_equivalent() -> None:
    assert nearest_irc_colour("#ff8c00") == 53


def test_near_classic_colour_prefers_classic() -> None:
    assert nearest_irc_colour("#00ff00") == 9  # extended 56 is exact, but 9 renders everywhere


def test_nearest_colour_is_case_insensitive() -> None:
    assert nearest_irc_colour("#FF0000") == 4


# =========================================================================== mentions


def test_mention_at_start_with_colon() -> None:
    assert find_nick_mentions("alice: hi", ["alice"]) == [(0, 5, "alice")]


def test_mention_is_case_insensitive_and_returns_given_nick() -> None:
    assert find_nick_mentions("ALICE, hi", ["Alice"]) == [(0, 5, "Alice")]


def test_mention_uses_rfc1459_casemapping() -> None:
    assert find_nick_mentions("hi {bot}|x", ["[Bot]\\x"]) == [(3, 10, "[Bot]\\x")]


def test_mention_with_ascii_casemapping_does_not_fold_brackets() -> None:
    assert find_nick_mentions("{bot}", ["[bot]"], casemapping="ascii") == []


def test_mention_requires_nick_boundaries() -> None:
    nicks = ["bob"]
    assert find_nick_mentions("bobby", nicks) == []
    assert find_nick_mentions("bob_", nicks) == []
    assert find_nick_mentions("bob-x", nicks) == []
    assert find_nick_mentions("[bob]", nicks) == []
    assert find_nick_mentions("xbob", nicks) == []
    assert find_nick_mentions("bob2", nicks) == []
    assert find_nick_mentions("bobé", nicks) == []


def test_mention_allows_punctuation_around_it() -> None:
    assert find_nick_mentions("(bob) bob's bob. @bob", ["bob"]) == [
        (1, 4, "bob"),
        (6, 9, "bob"),
        (12, 15, "bob"),
        (18, 21, "bob"),
    ]


def test_nicks_with_special_characters_are_matched_literally() -> None:
    assert find_nick_mentions("hey [m]^x|", ["[m]^x|"]) == [(4, 10, "[m]^x|")]
    assert find_nick_mentions("a*b axb", ["a.b", "a*"]) == []  # no regex semantics


def test_longest_nick_wins() -> None:
    assert find_nick_mentions("alice_ hi", ["alice", "alice_"]) == [(0, 6, "alice_")]


def test_multiple_mentions_in_order() -> None:
    assert find_nick_mentions("a and b", ["b", "a"]) == [(0, 1, "a"), (6, 7, "b")]


def test_no_nicks_or_empty_nicks_find_nothing() -> None:
    assert find_nick_mentions("anything", []) == []
    assert find_nick_mentions("anything", [""]) == []
    assert find_nick_mentions("", ["a"]) == []


def test_offsets_index_the_original_text() -> None:
    text = "Hi ALICE~ and ｗide"
    for start, end, nick in find_nick_mentions(text, ["alice~"]):
        assert text[start:end].lower().replace("~", "^") == nick.replace("~", "^")


# find_mentions: the per-line path, one dict lookup per nick-shaped word


def test_find_mentions_looks_words_up_in_a_folded_nick_dict() -> None:
    members = {"bob": "B", "{carol}": "C", "d^n": "D"}  # keys folded (rfc1459)
    text = "BOB: hi [Carol], and D~N. bobby bob_ xbob"
    assert find_mentions(text, members) == [(0, 3, "B"), (8, 15, "C"), (21, 24, "D")]


def test_find_mentions_takes_tokens_with_trailing_punctuation() -> None:
    members = {"alice": 1}
    for text in ("alice: x", "alice, x", "x alice.", "@alice!", "(alice)", "alice's", "<alice>"):
        found = find_mentions(text, members)
        assert [text[a:b].lower() for a, b, _ in found] == ["alice"], text


def test_find_mentions_follows_the_servers_casemapping() -> None:
    assert find_mentions("[bot]", {"{bot}": 1}) == [(0, 5, 1)]
    assert find_mentions("[bot]", {"{bot}": 1}, casemapping="ascii") == []
    assert find_mentions("[BOT]", {"[bot]": 1}, casemapping="ascii") == [(0, 5, 1)]


def test_find_mentions_skips_html_character_references() -> None:
    members = {"amp": 1, "lt": 2, "x27": 3}
    assert find_mentions("a &amp; b &lt;c &#x27;", members) == []
    assert find_mentions("amp; lt & x27", members) == [(0, 3, 1), (5, 7, 2), (10, 13, 3)]


def test_find_mentions_cost_does_not_grow_with_the_member_count() -> None:
    import time

    text = "alice: did you see what bob said about the build? " * 2
    small = {"alice": 1, "bob": 2}
    big = {f"user{i}": i for i in range(20_000)} | small

    def cost(members: dict[str, int]) -> float:
        # CPU time: wall time on a loaded machine says little about the algorithm.
        start = time.thread_time()
        for _ in range(200):
            assert len(find_mentions(text, members)) == 4
        return time.thread_time() - start

    cost(small)
    assert cost(big) < cost(small) * 5 + 0.05
