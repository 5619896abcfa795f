"""The retry policy of Matrix-side sends, against a tiny homeserver stand-in over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web
from mautrix.errors import MatrixRequestError

from bridgekit.matrix.client import Backoff, MatrixClient, message_type, send_event, with_retries
from bridgekit.testing.ports import free_port


class FlakyHomeserver:
    """Answers each send with the next scripted (status, body), then 200."""

    def __init__(self, script: list[tuple[int, dict | str]]) -> None:
        self.script = list(script)
        self.calls: list[float] = []
        self.txn_ids: list[str] = []
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.app = web.Application()
        self.app.router.add_put("/_matrix/client/v3/rooms/{room}/send/{type}/{txn}", self.send)
        # What the intent does before a send: register the bot, join the room.
        self.app.router.add_post("/_matrix/client/v3/register", self.ok)
        self.app.router.add_post("/_matrix/client/v3/join/{room}", self.joined)
        self.runner: web.AppRunner | None = None
        self.port = free_port()

    async def ok(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def joined(self, request: web.Request) -> web.Response:
        return web.json_response({"room_id": request.match_info["room"]})

    async def send(self, request: web.Request) -> web.Response:
        self.calls.append(time.monotonic())
        self.txn_ids.append(request.match_info["txn"])
        self.requests.append((request.path, dict(request.query), await request.read()))
        if self.script:
            status, body = self.script.pop(0)
            if isinstance(body, str):  # a proxy's error page, say
                return web.Response(text=body, status=status, content_type="text/html")
            return web.json_response(body, status=status)
        return web.json_response({"event_id": "$ok"})

    async def __aenter__(self) -> FlakyHomeserver:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


#: The two ways a send is made: mautrix's intent method (notices, state), and
#: :func:`send_event`, the direct request every bridged message takes. Both follow one policy.
SENDERS = ("mautrix", "send_event")


@pytest.fixture(params=SENDERS)
def sender(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def send_via(hs: FlakyHomeserver, sender: str, max_attempts: int | None = None) -> str:
    client = MatrixClient(f"http://127.0.0.1:{hs.port}", "test", "@bot:test", "as", "bridge")
    await client.start()
    try:
        bot = client.bot
        assert bot is not None
        # Skip mautrix's power-level lookup, which would need more endpoints.
        bot._ensure_has_power_level_for = _noop  # type: ignore[method-assign]
        if sender == "send_event":
            return await with_retries(
                lambda: send_event(bot, "!r:test", "m.room.message", {"body": "x"}, "bk1"),
                what="test send",
                max_attempts=max_attempts,
            )
        return await with_retries(
            lambda: bot.send_message_event(
                "!r:test", message_type("m.room.message"), {"body": "x"}, txn_id="bk1"
            ),
            what="test send",
            max_attempts=max_attempts,
        )
    finally:
        await client.stop()


async def _noop(*args: object, **kwargs: object) -> None:
    return None


async def test_429_waits_for_retry_after_ms(sender: str):
    limited = {"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 400}
    async with FlakyHomeserver([(429, limited)]) as hs:
        assert await send_via(hs, sender) == "$ok"
        assert len(hs.calls) == 2
        assert hs.calls[1] - hs.calls[0] >= 0.4


async def test_5xx_and_connection_errors_are_retried_with_the_same_txn_id(sender: str):
    async with FlakyHomeserver([(502, {}), (500, {"errcode": "M_UNKNOWN", "error": "boom"})]) as hs:
        assert await send_via(hs, sender) == "$ok"
        assert hs.txn_ids == ["bk1", "bk1", "bk1"]  # idempotent on the homeserver side


async def test_permanent_errors_are_raised_at_once(sender: str):
    forbidden = {"errcode": "M_FORBIDDEN", "error": "not in room"}
    async with FlakyHomeserver([(403, forbidden)]) as hs:
        with pytest.raises(MatrixRequestError) as err:
            await send_via(hs, sender)
        assert err.value.http_status == 403
        assert len(hs.calls) == 1


async def test_max_attempts_bounds_transient_retries(sender: str):
    async with FlakyHomeserver([(503, {})] * 5) as hs:
        with pytest.raises(MatrixRequestError):
            await send_via(hs, sender, max_attempts=2)
        assert len(hs.calls) == 2


async def test_send_event_puts_the_json_as_the_ghost_at_the_remote_time():
    async with FlakyHomeserver([]) as hs:
        client = MatrixClient(f"http://127.0.0.1:{hs.port}", "test", "@bot:test", "as", "b")
        await client.start()
        try:
            ghost = client.intent("@_irc_bob/x:test")
            await client.state_store.joined("!r:test", ghost.mxid)
            content = {"msgtype": "m.text", "body": "héllo & <b>"}
            event_id = await send_event(ghost, "!r:test", "m.room.message", content, "bk 7", 1234)
        finally:
            await client.stop()
    assert event_id == "$ok"
    path, query, body = hs.requests[0]
    assert path == "/_matrix/client/v3/rooms/!r:test/send/m.room.message/bk 7"
    assert query == {"user_id": "@_irc_bob/x:test", "ts": "1234"}
    assert json.loads(body) == content


async def test_send_event_raises_a_request_error_for_a_body_that_is_not_json():
    async with FlakyHomeserver([(502, "<html>Bad Gateway</html>")]) as hs:
        client = MatrixClient(f"http://127.0.0.1:{hs.port}", "test", "@bot:test", "as", "b")
        await client.start()
        try:
            assert client.bot is not None
            with pytest.raises(MatrixRequestError) as err:
                await send_event(client.bot, "!r:test", "m.room.message", {}, "t1")
        finally:
            await client.stop()
    assert err.value.http_status == 502
    assert "Bad Gateway" in str(err.value)


def test_backoff_grows_and_is_capped():
    backoff = Backoff(base=0.5, cap=4)
    delays = [backoff.next_delay() for _ in range(10)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= 4 for d in delays)
    assert max(delays[5:]) >= 2  # reached the cap region
    backoff.reset()
    assert backoff.next_delay() <= 0.5
