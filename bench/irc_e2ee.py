"""The encrypted mode of bench/irc.py (``--encrypted``): the Matrix user as a real E2EE client
(matrix-nio on vodozemac, as in tests/test_e2e_encryption.py), and the bridge run with its
crypto backend's calls timed (bench/crypto_timing.py).

:class:`NioMatrixSide` has :class:`irc_sides.MatrixSide`'s interface (``send``, ``history``,
``expect``/``arrivals``/``order``), so the phases of irc_phases.py run unchanged; one client
reads both portals of the run (the plaintext one and the encrypted one), switched with
:meth:`NioMatrixSide.use_room`. In an encrypted room the markers travel as ciphertext on the
Matrix side, so the packet capture keys those legs by event id (irc_capture.py
``--event-ids``) and :meth:`NioMatrixSide.translate_stamps` maps them back to the markers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from _stats import summary_ms  # noqa: E402
from irc_sides import MARKER_RE, BridgeProcess, now  # noqa: E402

TIMING_SCRIPT = REPO / "bench" / "crypto_timing.py"


class NioMatrixSide:
    """The Matrix user on its own E2EE device (see the module docstring)."""

    def __init__(self, base_url: str, user_id: str, store_dir: Path, password: str = "pw") -> None:
        from nio import AsyncClient, AsyncClientConfig

        store_dir.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url
        self.user_id = user_id
        self.password = password
        self.client = AsyncClient(
            base_url,
            user_id,
            store_path=str(store_dir),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        self.session: aiohttp.ClientSession | None = None
        self.room_id = ""
        self.rooms: list[str] = []
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.own_order: list[int] = []
        self.order_by_room: dict[str, list[int]] = {}
        self.expect: dict[int, asyncio.Future[float]] = {}
        self.limited = 0
        #: event id -> the markers its (decrypted) body carries: the capture's key for them.
        self.event_markers: dict[str, list[str]] = {}
        #: Encrypted events this device could not decrypt (yet), by event id.
        self.undecrypted: dict[str, Any] = {}
        #: Events of the phases' rooms that could not be decrypted in the history check.
        self.history_undecrypted = 0
        self._sync_stamp = 0.0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def login(self) -> None:
        from nio import LoginResponse, MegolmEvent, RoomMessageText, SyncResponse

        resp = await self.client.login(self.password, device_name="bench device")
        if not isinstance(resp, LoginResponse):
            raise RuntimeError(f"login of {self.user_id} failed: {resp}")
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        # When a /sync answer arrived (before nio parses and decrypts it): the arrival time
        # of its events, as MatrixSide takes it when the body is read.
        real = self.client.create_matrix_response

        async def stamped(*args: Any, **kw: Any) -> Any:
            if (args[0] if args else kw.get("response_class")) is SyncResponse:
                self._sync_stamp = now()
            return await real(*args, **kw)

        self.client.create_matrix_response = stamped  # type: ignore[method-assign]
        self.client.add_event_callback(self._on_message, (RoomMessageText, MegolmEvent))
        self.client.add_response_callback(self._on_sync, SyncResponse)
        self._task = asyncio.create_task(self._sync_loop())
        await asyncio.wait_for(self.client.synced.wait(), 60)
        deadline = now() + 30
        while self.client.should_upload_keys:
            if now() > deadline:
                raise RuntimeError("the bench device's keys were never uploaded")
            await asyncio.sleep(0.05)
        # Cross-signed, as Element's devices are (matrix-nio does not do it itself): the
        # bridge resolves the trust of each message it decrypts through these keys.
        from ingest_e2ee import cross_sign

        await cross_sign(
            self.base_url, str(self.client.access_token), self.user_id, str(self.client.device_id)
        )
        self._live = True

    async def _sync_loop(self) -> None:
        flt = {"room": {"timeline": {"limit": 1000}, "state": {"lazy_load_members": False}}}
        while True:
            try:
                await self.client.sync_forever(timeout=30000, sync_filter=flt)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                print(f"bench client: /sync failed: {e!r}", file=sys.stderr)
                await asyncio.sleep(0.2)

    async def start(self, room_id: str, more_rooms: list[str] | None = None) -> None:
        """Read (and send to) ``room_id`` from now on; wait until the client knows the room
        and, if it is encrypted, the devices it must share its room key with."""
        self.use_room(room_id)
        deadline = now() + 60
        while room_id not in self.client.rooms:
            if now() > deadline:
                raise TimeoutError(f"{room_id} never reached the bench client's /sync")
            await asyncio.sleep(0.05)
        await self.client.joined_members(room_id)
        if self.client.should_query_keys:
            await self.client.keys_query()

    def use_room(self, room_id: str) -> None:
        self.room_id = room_id
        self.rooms = [room_id]

    async def wait_encrypted(self, room_id: str, timeout: float = 60) -> None:
        deadline = now() + timeout
        while not (room_id in self.client.rooms and self.client.rooms[room_id].encrypted):
            if now() > deadline:
                raise TimeoutError(f"{room_id} is not an encrypted room for the bench client")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.session is not None:
            await self.session.close()
        await self.client.close()

    # -- receiving -----------------------------------------------------------------------------

    async def _on_message(self, room: Any, event: Any) -> None:
        from nio import MegolmEvent

        if isinstance(event, MegolmEvent):
            self.undecrypted[event.event_id] = (room.room_id, event)
            return
        self._seen(room.room_id, event.event_id, event.body, self._sync_stamp)

    async def _on_sync(self, response: Any) -> None:
        """A room key that came after its events (nio does not go back to them): retry."""
        if not self.undecrypted:
            return
        for event_id, (room_id, event) in list(self.undecrypted.items()):
            try:
                decrypted = self.client.decrypt_event(event)
            except Exception:
                continue
            body = getattr(decrypted, "body", None)
            del self.undecrypted[event_id]
            if isinstance(body, str):
                self._seen(room_id, event_id, body, now())

    def _seen(self, room_id: str, event_id: str, body: Any, stamp: float) -> None:
        if not self._live or not isinstance(body, str):
            return
        found = list(MARKER_RE.finditer(body))
        if found:
            self.event_markers[event_id] = [m.group(0)[2:] for m in found]
        if room_id != self.room_id:
            return
        for m in found:
            seq = int(m.group(2))
            if m.group(1) == "M":
                self.own_order.append(seq)
                continue
            self.order.append(seq)
            self.order_by_room.setdefault(room_id, []).append(seq)
            self.arrivals.setdefault(seq, stamp)
            fut = self.expect.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_result(stamp)

    # -- sending -------------------------------------------------------------------------------

    async def send(self, text: str) -> float:
        """Send one m.text (encrypted by the client in an encrypted room); returns when
        Synapse answered (the send's own latency, the client's encryption included)."""
        from nio import RoomSendResponse

        start = now()
        resp = await self.client.room_send(
            self.room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": text},
            ignore_unverified_devices=True,
        )
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"send failed: {resp}")
        self.event_markers[str(resp.event_id)] = [m.group(0)[2:] for m in MARKER_RE.finditer(text)]
        return now() - start

    async def history(self, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` messages of the room, oldest first, decrypted by this device
        (an event it cannot decrypt is counted in ``history_undecrypted`` and has no body)."""
        from nio import Event, MegolmEvent

        assert self.session is not None
        raw: list[dict[str, Any]] = []
        token: str | None = None
        url = f"{self.base_url}/_matrix/client/v3/rooms/{quote(self.room_id, safe='')}/messages"
        headers = {"Authorization": f"Bearer {self.client.access_token}"}
        while len(raw) < limit:
            params = {
                "dir": "b",
                "limit": str(min(1000, limit - len(raw))),
                "filter": json.dumps({"types": ["m.room.message", "m.room.encrypted"]}),
            }
            if token:
                params["from"] = token
            async with self.session.get(url, params=params, headers=headers) as resp:
                data = await resp.json()
            chunk = data.get("chunk", [])
            raw.extend(chunk)
            token = data.get("end")
            if not chunk or not token:
                break
        out = []
        for evt in reversed(raw):
            if evt.get("type") != "m.room.encrypted":
                out.append(evt)
                continue
            body = None
            parsed = Event.parse_encrypted_event(evt)
            if isinstance(parsed, MegolmEvent):
                with contextlib.suppress(Exception):
                    body = getattr(self.client.decrypt_event(parsed), "body", None)
            if not isinstance(body, str):
                self.history_undecrypted += 1
                body = None
            out.append({"event_id": evt.get("event_id"), "content": {"body": body}})
        return out

    # -- the capture ---------------------------------------------------------------------------

    def translate_stamps(self, stamps: dict[str, float]) -> dict[str, float]:
        """Give the marker keys the stamps the capture took by event id (what Synapse and
        the bridge exchange in an encrypted room is ciphertext: no markers in it)."""
        out = dict(stamps)
        for event_id, markers in self.event_markers.items():
            for route in ("x>hs", "resp>hs", "x>as"):
                stamp = stamps.get(f"E{event_id}|{route}")
                if stamp is None:
                    continue
                for marker in markers:
                    out.setdefault(f"{marker}|{route}", stamp)
        return out


class TimedBridgeProcess(BridgeProcess):
    """The bridge run through bench/crypto_timing.py: its crypto backend's calls timed."""

    def __init__(self, workdir: Path, config_path: Path, metrics_port: int) -> None:
        super().__init__(workdir, config_path, metrics_port)
        self.timings_path = workdir / "crypto_timings.json"
        self._asked = 0

    def command(self) -> list[str]:
        cmd = super().command()
        i = cmd.index("-m")  # [python, (profile args), -m, bridgekit, run, -c, config]
        return [*cmd[:i], str(TIMING_SCRIPT), str(self.timings_path), *cmd[i + 2 :]]

    async def crypto_calls(self, timeout: float = 10) -> dict[str, list[list[float]]]:
        """Every timed call so far: op -> [[wall s, loop CPU s], ...]."""
        self._asked += 1
        asked = f"{self.pid}-{self._asked}"
        req = self.timings_path.with_name(self.timings_path.name + ".req")
        req.write_text(asked)
        deadline = now() + timeout
        while now() < deadline:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(self.timings_path.read_text())
                if data.get("seq") == asked:
                    return dict(data["calls"])
            await asyncio.sleep(0.05)
        raise TimeoutError("the bridge did not report its crypto timings")


def crypto_summary(
    before: dict[str, list[list[float]]], after: dict[str, list[list[float]]], n: int
) -> dict[str, Any]:
    """The crypto calls of one phase (``after`` minus the ``before`` prefix): wall-time
    latencies per call, and the loop thread's CPU per message of the phase."""
    out: dict[str, Any] = {}
    for op, calls in after.items():
        new = calls[len(before.get(op, [])) :]
        if not new:
            continue
        out[op] = {
            "calls": len(new),
            "wall_ms": summary_ms([c[0] for c in new]),
            "loop_cpu_ms_per_msg": round(sum(c[1] for c in new) / max(n, 1) * 1000, 3),
        }
    return out
