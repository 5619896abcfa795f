"""Edge cases of the relay label (bridgekit.portal.relay); the end-to-end behaviour is in
tests/irc/test_e2e_relay.py."""

from __future__ import annotations

from typing import Any

from bridgekit.contract.events import MessageContent
from bridgekit.contract.relay_format import RelayFormat
from bridgekit.portal.relay import clean_name, relay_name


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


class _Member:
    def __init__(self, displayname: str | None, avatar_url: str | None) -> None:
        self.displayname = displayname
        self.avatar_url = avatar_url


class _StateStore:
    def __init__(self, members: dict[str, _Member]) -> None:
        self.members = members

    async def has_full_member_list(self, room_id: str) -> bool:
        return True

    async def get_member_profiles(self, room_id: str) -> dict[str, _Member]:
        return self.members

    async def get_member(self, room_id: str, mxid: str) -> _Member | None:
        return self.members.get(mxid)


class _Bridge:
    """What relaying.relay_sender reads of the runtime: the members and the media links."""

    def __init__(self, members: dict[str, _Member]) -> None:
        self.matrix = type("M", (), {"state_store": _StateStore(members)})()

    async def media_url(self, mxc: str, filename: str = "") -> str:
        from bridgekit.matrix.media import MediaSigner

        return MediaSigner("secret").url("https://bridge.example", mxc, filename)


async def test_relay_sender_is_sanitised_and_never_hands_out_a_raw_or_bad_avatar():
    from bridgekit.portal.relaying import relay_sender

    members = {
        "@c:x": _Member("Carol\r\n<bob> hi\u202e" + "x" * 300, "mxc://x/face"),
        "@d:x": _Member("Dee", "https://tracker.example/pixel.png"),  # not an mxc
        "@e:x": _Member("Eve", "mxc://x/../../etc"),  # not a media id the links serve
        "@f:x": _Member("Dee", None),
    }
    bridge: Any = _Bridge(members)
    carol = await relay_sender(bridge, "!r:x", "@c:x")
    assert carol.mxid == "@c:x"
    assert carol.displayname.startswith("Carol <bob> hi") and len(carol.displayname) <= 64
    assert carol.avatar_url is not None
    assert carol.avatar_url.startswith("https://bridge.example/_bridgekit/media/x/face/")
    dee = await relay_sender(bridge, "!r:x", "@d:x")
    assert dee.avatar_url is None
    assert dee.displayname == "Dee (@d:x)"  # another member is called Dee
    assert (await relay_sender(bridge, "!r:x", "@e:x")).avatar_url is None


def test_linkable_accepts_only_mxc_uris_the_media_links_serve():
    from bridgekit.matrix.media import linkable

    assert linkable("mxc://example.org/abc_DEF-1.2")
    for bad in ("https://x/y", "mxc://x", "mxc:///y", "mxc://x/a/b", "mxc://x/../y", None, 3):
        assert not linkable(bad), bad
