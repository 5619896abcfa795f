"""Unit tests: Matrix HTML <-> XEP-0393 styling and XHTML-IM, with allow-lists."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from bridges.xmpp.formatting import (
    html_to_styling,
    html_to_xhtml,
    styling_to_html,
    xhtml_to_html,
)


def test_html_to_styling() -> None:
    assert html_to_styling("<b>bold</b> and <i>it</i> <del>gone</del> <code>x</code>") == (
        "*bold* and _it_ ~gone~ `x`"
    )
    assert html_to_styling("<pre><code>a = 1\n</code></pre>") == "```\na = 1\n```"
    assert html_to_styling("<blockquote>q1<br>q2</blockquote>after") == "> q1\n> q2\nafter"
    assert html_to_styling('<a href="https://x.org">site</a>') == "site <https://x.org>"
    assert html_to_styling('<a href="https://matrix.to/#/@a:b">Al</a>: hi') == "Al: hi"
    assert html_to_styling("<mx-reply>quoted secret</mx-reply>answer") == "answer"
    assert html_to_styling("<ol><li>a</li><li>b</li></ol>") == "1. a\n2. b"
    assert html_to_styling("&lt;b&gt; &amp;") == "<b> &"


def test_styling_to_html() -> None:
    assert styling_to_html("plain") is None
    assert styling_to_html("a *b* _c_ ~d~ `e*f*`") == (
        "a <strong>b</strong> <em>c</em> <del>d</del> <code>e*f*</code>"
    )
    assert styling_to_html("not*bold* 2 * 3 * 4") is None
    assert styling_to_html("> quoted\nreply") == "<blockquote>quoted</blockquote>reply"
    assert styling_to_html("```\n<b>&\n```") == "<pre><code>&lt;b&gt;&amp;</code></pre>"
    assert styling_to_html("*<script>*") == "<strong>&lt;script&gt;</strong>"


def test_xhtml_im_is_allow_listed_both_ways() -> None:
    body = html_to_xhtml(
        '<b>x</b><script>alert(1)</script><a href="javascript:x">l</a>'
        '<img src="x" onerror="y"><s>y</s>&lt;/body&gt;'
    )
    xml = ET.tostring(body, encoding="unicode")
    assert "script" not in xml and "javascript" not in xml and "onerror" not in xml
    assert "&lt;/body&gt;" in xml
    html = xhtml_to_html(body)
    assert html == "<strong>x</strong><a>l</a><del>y</del>&lt;/body&gt;"
    evil = ET.fromstring(
        '<body xmlns="http://www.w3.org/1999/xhtml"><p onclick="x">a<iframe>b</iframe>'
        '<a href="data:text/html,x">c</a>'
        '<span style="text-decoration: underline">u</span></p></body>'
    )
    assert xhtml_to_html(evil) == "<p>ab<a>c</a><u>u</u></p>"
