"""Unit tests of the IRC connector's pure parts (no servers needed)."""

from __future__ import annotations

import asyncio

import pytest

from bridges.irc import crypto
from bridges.irc.client import ISupport, TokenBucket
from bridges.irc.config import parse, validate
from bridges.irc.connector import IRCConnector
from bridges.irc.netsplit import NetsplitDebouncer, is_netsplit_quit
from bridges.irc.outgoing import clean_text, one_line, short_diff


def test_config_validation_reports_every_key():
    assert validate({"enabled": True}) == []
    assert validate({"servers": {"local": {"host": "127.0.0.1"}}}) == []
    problems = dict(validate({"bogus": 1, "servers": {"Bad_Name": {
        "host": "", "port": 70000, "tls": "yes", "send_rate": 0, "burst": 0,
        "mode_power_levels": {"o": 500, "xx": 1}, "ghost_template": "_irc_{server}",
        "nick_template": "{nope}", "edit_format": "{other}", "reconnect": {"min_delay": -1},
        "sasl_username": "u", "password": "a\r\nQUIT", "unknown": 1, "channels": ["#ok", "bad"],
    }}}))
    for key in ("bogus", "servers.Bad_Name", "servers.Bad_Name.host", "servers.Bad_Name.port",
                "servers.Bad_Name.tls", "servers.Bad_Name.send_rate", "servers.Bad_Name.burst",
                "servers.Bad_Name.mode_power_levels.o", "servers.Bad_Name.mode_power_levels.xx",
                "servers.Bad_Name.ghost_template", "servers.Bad_Name.nick_template",
                "servers.Bad_Name.edit_format", "servers.Bad_Name.reconnect.min_delay",
                "servers.Bad_Name.sasl_password", "servers.Bad_Name.password",
                "servers.Bad_Name.unknown", "servers.Bad_Name.channels"):
        assert key in problems, key


def test_parse_fills_defaults():
    sc = parse({"servers": {"libera": {"host": "irc.example", "reconnect": {"concurrency": 3}}}})[
        "libera"]
    assert sc.port == 6667 and sc.mode_power_levels == {"o": 50, "v": 1}
    assert sc.reconnect_concurrency == 3 and sc.nick_template == "{displayname}[m]"


def test_namespace_templates_cover_every_server_and_work_without_servers():
    assert IRCConnector.namespace_templates({"enabled": True}) == (
        ["_irc_{server}_{nick}"], ["_irc_{server}_{channel}"])
    ghosts, aliases = IRCConnector.namespace_templates({"servers": {
        "a": {"host": "x"}, "b": {"host": "y", "ghost_template": "irc_{server}_{nick}"}}})
    assert ghosts == ["_irc_a_{nick}", "irc_b_{nick}"]
    assert aliases == ["_irc_a_{channel}", "_irc_b_{channel}"]


def test_netsplit_detection_and_debounce():
    assert is_netsplit_quit("hub.example.net leaf.example.net")
    assert not is_netsplit_quit("Quit: bye")
    assert not is_netsplit_quit("a.b a.b")
    assert not is_netsplit_quit("hub.example.net leaf.example.net extra")

    async def run() -> list:
        out: list = []
        deb = NetsplitDebouncer(0.05, out.extend)
        deb.quit("#c", "bob", "a.net b.net")
        deb.quit("#c", "carol", "a.net b.net")
        assert deb.rejoined("#c", "bob")
        assert not deb.rejoined("#c", "dave")
        await asyncio.sleep(0.1)
        return out

    assert asyncio.run(run()) == [("#c", "carol", "a.net b.net")]


@pytest.mark.parametrize("stdlib", [False, True])
def test_secret_box_round_trip_and_tamper_detection(monkeypatch, stdlib):
    if stdlib:
        monkeypatch.setattr(crypto, "AESGCM", None)
    box = crypto.SecretBox(b"k" * 32)
    token = box.encrypt("hunter2", context="login1")
    assert "hunter2" not in token
    assert box.decrypt(token, context="login1") == "hunter2"
    with pytest.raises(crypto.SecretError):
        box.decrypt(token, context="login2")
    with pytest.raises(crypto.SecretError):
        crypto.SecretBox(b"x" * 32).decrypt(token, context="login1")
    version, _, body = token.partition(":")
    tampered = version + ":" + body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    with pytest.raises(crypto.SecretError):
        box.decrypt(tampered, context="login1")


def test_text_cleaning_and_corrections():
    assert clean_text("a\x00b\x01c\x02bold\x02\td") == "abc\x02bold\x02    d"
    assert one_line("kick\r\nQUIT :x\x00") == "kick QUIT :x"
    assert short_diff("i like teh cats", "i like the cats") == "the"
    assert short_diff(None, "new text") == "new text"
    assert short_diff("abc", "completely different words here") == (
        "completely different words here")


def test_token_bucket_and_isupport():
    bucket = TokenBucket(rate=10, burst=2)
    assert bucket.wait_time() == 0
    bucket.take()
    bucket.take()
    assert 0 < bucket.wait_time() <= 0.1
    isup = ISupport()
    isup.load(["CASEMAPPING=ascii", "PREFIX=(qaohv)~&@%+", "CHANTYPES=#", "NICKLEN=16"])
    assert isup.casemapping == "ascii" and isup.prefix_modes == "qaohv"
    assert isup.prefix_chars == "~&@%+" and isup.nicklen == 16 and isup.chantypes == "#"
