"""open_dm, the runtime half of ``start-chat``, on its edge cases (end to end with real
servers: tests/irc and tests/xmpp test_e2e_start_chat.py, tests/test_e2e_connector_commands.py)."""

from __future__ import annotations

import pytest

from bridgekit.contract.connector import IdentifierResolver, ResolvedIdentifier
from bridgekit.contract.events import PortalKey, RemoteUserID
from bridgekit.portal.start_chat import open_dm


class Resolver(IdentifierResolver):
    def __init__(self, answer: ResolvedIdentifier | Exception | None) -> None:
        self.answer = answer

    async def resolve_identifier(
        self, user_mxid: str, identifier: str
    ) -> ResolvedIdentifier | None:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class API:
    network = "net"

    def __init__(self) -> None:
        self.invited: list[tuple[str, PortalKey]] = []

    def ghost_mxid(self, remote_user_id: str) -> str:
        return f"@_net_{remote_user_id}:example.org"

    async def invite_to_portal(self, login_id: str, portal: PortalKey, reason: str = "") -> str:
        self.invited.append((login_id, portal))
        return "!dm:example.org"


BOB = ResolvedIdentifier("login-a", RemoteUserID("bob"), "Bob", PortalKey("bob", "login-a"))


async def test_answers_for_what_cannot_be_opened() -> None:
    api = API()
    bad = await open_dm(Resolver(ValueError("no commas")), api, "@a:x", "b,ob")  # type: ignore[arg-type]
    assert bad == "'b,ob' is not a valid net identifier: no commas"
    assert "There is no net user 'bob'" in await open_dm(Resolver(None), api, "@a:x", "bob")  # type: ignore[arg-type]
    down = await open_dm(Resolver(ConnectionError("slow")), api, "@a:x", "bob")  # type: ignore[arg-type]
    assert "Could not look up 'bob' on net: slow" == down
    assert api.invited == []


async def test_opens_the_resolved_chat_through_the_chosen_login() -> None:
    api = API()
    answer = await open_dm(Resolver(BOB), api, "@a:x", "bob", lambda login: login == "login-a")  # type: ignore[arg-type]
    assert answer == "Chat with Bob (@_net_bob:example.org): !dm:example.org (invited)."
    assert api.invited == [("login-a", PortalKey("bob", "login-a"))]


async def test_a_login_of_someone_else_is_not_used() -> None:
    api = API()
    with pytest.raises(RuntimeError, match="not @a:x's"):
        await open_dm(Resolver(BOB), api, "@a:x", "bob", lambda login: False)  # type: ignore[arg-type]
    assert api.invited == []


async def test_create_dm_is_asked_when_resolving_found_no_chat() -> None:
    resolver = Resolver(ResolvedIdentifier("login-a", RemoteUserID("bob")))
    with pytest.raises(NotImplementedError):
        await resolver.create_dm(ResolvedIdentifier("login-a", RemoteUserID("bob")))

    class Creating(Resolver):
        async def create_dm(self, resolved: ResolvedIdentifier) -> PortalKey:
            return PortalKey(f"dm-{resolved.user_id}", resolved.login_id)

    api = API()
    answer = await open_dm(Creating(resolver.answer), api, "@a:x", "bob")  # type: ignore[arg-type]
    assert answer.startswith("Chat with bob (")
    assert api.invited == [("login-a", PortalKey("dm-bob", "login-a"))]
