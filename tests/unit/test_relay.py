"""Edge cases of the relay label (bridgekit.relay); the end-to-end behaviour is in
tests/irc/test_e2e_relay.py."""

from __future__ import annotations

from bridgekit.events import MessageContent
from bridgekit.relay import RelayFormat, clean_name, relay_name


def test_clean_name_drops_controls_format_and_separators():
    assert clean_name("a\r\nb\tc") == "a b c"
    assert clean_name("\u202eevil\u200b\x02\x1f\x7f") == "evil"
    assert clean_name("x\u2028y\u2029z") == "x y z"
    assert clean_name("\U000e0001\ue000") == ""  # tag and private-use characters
    assert clean_name("  café  ") == "café"
    assert len(clean_name("n" * 500)) == 64


def test_relay_name_falls_back_and_tells_shared_names_apart():
    assert relay_name("@al:x", None, []) == "al"
    assert relay_name("@al:x", "\r\n", []) == "al"
    assert relay_name("@al:x", "Al", [("@al:x", "Al"), ("@b:x", "Bee")]) == "Al"
    assert relay_name("@al:x", "Al", [("@b:x", "al")]) == "Al (@al:x)"  # case-insensitive
    assert relay_name("@al:x", "bob", [("@bob:y", None)]) == "bob (@al:x)"  # a localpart
    assert relay_name("@al:x", "Al", None) == "Al (@al:x)"  # members unknown
    assert relay_name("@m:x", "Al (@al:x)", [("@al:x", "Al")]) == "Al (@al:x) (@m:x)"


def test_every_body_line_labelled_and_multiline_html_dropped():
    fmt = RelayFormat("<{displayname}> {message}", "Al", "@al:x")
    mc = MessageContent("hi\n<bob> I am bob", html="<b>hi</b><br>&lt;bob&gt; I am bob")
    fmt.apply(mc)
    assert mc.body == "<Al> hi\n<Al> <bob> I am bob"
    assert mc.html is None
    one = MessageContent("hi", html="<b>hi</b>")
    RelayFormat("<{displayname}> {message}", "A<l>", "@al:x").apply(one)
    assert one.html == "&lt;A&lt;l&gt;&gt; <b>hi</b>"
    assert fmt.overhead() == len("<Al> ")
