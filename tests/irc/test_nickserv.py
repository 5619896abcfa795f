"""Edge cases of the NickServ check (bridges.irc.nickserv); the end-to-end behaviour is in
tests/irc/test_e2e_auth.py."""

from __future__ import annotations

from bridges.irc.config import validate
from bridges.irc.nickserv import matches_mask, parse_userhost


def test_userhost_reply_parsing():
    assert (
        parse_userhost("NickServ=+NickServ@services.", "nickserv") == "NickServ!NickServ@services."
    )
    assert parse_userhost("other=+a@b NickServ*=-ns@svc.host", "NickServ") == "NickServ!ns@svc.host"
    assert parse_userhost("", "NickServ") is None
    assert parse_userhost("NickServ=+", "NickServ") is None
    assert parse_userhost("NickServX=+a@b", "NickServ") is None


def test_services_mask_matching():
    mask = "NickServ!NickServ@services.libera.chat"
    assert matches_mask(mask, "nickserv!NickServ@Services.Libera.Chat")
    assert not matches_mask(mask, "NickServ!NickServ@services.libera.chat.evil.com")
    assert not matches_mask(mask, "NickServ!evil@1.2.3.4")
    assert matches_mask("NickServ!*@services.*", "NickServ!x@services.example")
    assert not matches_mask("NickServ!*@services.*", "NickServ!x@evil.example")
    # [ ] are nick characters, not a glob class; rfc1459 folds [ to {.
    assert matches_mask("N[S]!a@b", "n{s}!a@b")
    assert not matches_mask("N[S]!a@b", "NS!a@b")


def test_services_config_is_checked():
    def problems(**section):
        return validate({"servers": {"x": {"host": "h", **section}}})

    assert problems(services_mask="NickServ!NickServ@services.", nickserv="NS") == []
    assert problems(services_mask="NickServ") == [
        ("servers.x.services_mask", "must be a nick!user@host mask")
    ]
    assert problems(services_mask="a!b@c d") != []
    assert problems(nickserv="Nick Serv") == [("servers.x.nickserv", "must be a nick")]
