"""HTTP listeners (aiohttp) that stop at once rather than after a minute for nothing.

aiohttp's ``AppRunner.cleanup()`` stops listening, closes the idle connections and waits up to
``shutdown_timeout`` (60 s by default) for the requests being handled. A connection accepted
just as the listener closes (asyncio makes it a loop turn or two after the accept) can be
closed before its handler starts waiting for its request: the request then arrives, is
ignored (the connection is closing), nothing ever wakes the handler, and the stop waits out
the whole timeout while the client, the homeserver pushing a transaction, hangs as long. In
the tests, which stop a bridge while Synapse pushes to it hundreds of times a run, about one
stop in a few hundred took 60 s instead of milliseconds.

:func:`stop_listener` closes, until the stop is over, every connection that is waiting for a
request (what aiohttp does once, at the start of the stop), so such a connection ends at once
(its client sees it closed, as if the listener had not accepted it); requests really being
handled get :data:`STOP_GRACE` seconds to finish. Used by the runtime's listeners (appservice
API, media links, metrics) and by connectors that serve HTTP (Slack's Events API).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

#: How long a stop waits for the requests being handled (a transaction being stored, a media
#: download being streamed); after it they are cancelled (a transaction not acknowledged is
#: sent again by the homeserver).
STOP_GRACE = 10.0
#: How often a stop closes the connections that came to wait for a request since.
_CLOSE_EVERY = 0.05
#: How long a connection reads on after an answer given before its request's body was read
#: (a 413), so that the client, still sending, gets to read the answer (aiohttp: 10 s). The
#: read goes on even once the client has gone, and a stop waits for it: a bridge stopped just
#: after answering a body too large took 10 s to stop.
LINGER = 1.0


async def start_listener(
    app: web.Application, host: str, port: int, *, grace: float = STOP_GRACE
) -> web.AppRunner:
    """Serve ``app`` on ``host:port``; :func:`stop_listener` stops it."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=grace,
        lingering_time=LINGER,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner


async def stop_listener(runner: web.AppRunner) -> None:
    """Stop ``runner``: no new connections, the requests being handled finish (within its
    shutdown timeout), every other connection is closed at once (see the module's doc)."""
    server = runner.server
    cleanup = asyncio.ensure_future(runner.cleanup())
    try:
        while not cleanup.done():
            await asyncio.wait({cleanup}, timeout=_CLOSE_EVERY)
            if server is not None and not cleanup.done():
                # close() ends a connection waiting for a request; on one handling a request
                # it only marks it to close after the response (aiohttp's own pre-shutdown).
                for conn in server.connections:
                    conn.close()
    finally:
        if not cleanup.done():
            cleanup.cancel()
    await cleanup
    if server is not None:
        # Accepted too late for the cleanup to wait for them (maybe closed by the loop above
        # before they waited for a request): nothing would end them.
        for conn in server.connections:
            conn.force_close()
