"""The encrypted mode of bench/ingest.py (``--portals --encrypted``): the same portal load, but
every event ``m.room.encrypted`` (Megolm), so the ingest path decrypts each one.

The load generator still plays Synapse (it PUTs the transactions), but the bridge's own
device needs a homeserver (MSC4190 device creation, key upload, the senders' device keys), so
this mode starts the test Synapse (bridgekit/testing/synapse.py) for the bridge. The senders
are real users there, each with an Olm device made here with python-olm (libolm, as
mautrix.crypto uses) and its keys uploaded. Each sender has a Megolm session per room it
sends in; the bodies are encrypted with them before anything is measured. The room keys reach
the bridge as a real client sends them: an Olm session per sender with the bot's device (its
one-time key claimed from Synapse), each ``m.room_key`` Olm-encrypted in an
``m.room.encrypted`` to-device message, delivered in transactions
(``de.sorunome.msc2409.to_device``) before the warm-up.

Two rows come from it, both against that Synapse, encryption on, every room a portal:
"portals+hs", the plaintext events, and "portals+e2ee", the same events encrypted: their
difference is what decryption costs on the ingest path.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

OLM = "m.olm.v1.curve25519-aes-sha2"
MEGOLM = "m.megolm.v1.aes-sha2"
PICKLE_KEY = "bench-pickle-key"


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Sender:
    """A Matrix user with an Olm device of its own (python-olm), registered on Synapse."""

    def __init__(self, user_id: str, device_id: str, token: str) -> None:
        import olm

        self.user_id = user_id
        self.device_id = device_id
        self.token = token
        self.account = olm.Account()
        keys = self.account.identity_keys
        self.curve25519: str = keys["curve25519"]
        self.ed25519: str = keys["ed25519"]
        #: room id -> this device's outbound Megolm session there.
        self.group: dict[str, Any] = {}
        #: room id -> the session key at index 0 (what the bridge gets).
        self.group_keys: dict[str, str] = {}

    def device_keys(self) -> dict[str, Any]:
        keys = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": [OLM, MEGOLM],
            "keys": {
                f"curve25519:{self.device_id}": self.curve25519,
                f"ed25519:{self.device_id}": self.ed25519,
            },
        }
        signature = self.account.sign(canonical(keys))
        keys["signatures"] = {self.user_id: {f"ed25519:{self.device_id}": signature}}
        return keys

    def session_for(self, room_id: str) -> Any:
        import olm

        session = self.group.get(room_id)
        if session is None:
            session = self.group[room_id] = olm.OutboundGroupSession()
            self.group_keys[room_id] = session.session_key
        return session

    def encrypt_event(self, evt: dict[str, Any]) -> dict[str, Any]:
        """The ``m.room.encrypted`` form of a room event this device sends."""
        room_id = evt["room_id"]
        session = self.session_for(room_id)
        plaintext = canonical({"type": evt["type"], "content": evt["content"], "room_id": room_id})
        out = dict(evt)
        out["type"] = "m.room.encrypted"
        out["content"] = {
            "algorithm": MEGOLM,
            "sender_key": self.curve25519,
            "ciphertext": session.encrypt(plaintext),
            "session_id": session.id,
            "device_id": self.device_id,
        }
        return out

    def room_key_messages(
        self, bot: str, bot_device: str, bot_keys: dict[str, str], one_time_key: str
    ) -> list[dict[str, Any]]:
        """The to-device messages that give the bot's device this sender's room keys: one
        Olm session (on the claimed one-time key), one ``m.room_key`` per room."""
        import olm

        session = olm.OutboundSession(self.account, bot_keys["curve25519"], one_time_key)
        out = []
        for room_id, session_key in self.group_keys.items():
            payload = {
                "type": "m.room_key",
                "content": {
                    "algorithm": MEGOLM,
                    "room_id": room_id,
                    "session_id": self.group[room_id].id,
                    "session_key": session_key,
                },
                "sender": self.user_id,
                "sender_device": self.device_id,
                "keys": {"ed25519": self.ed25519},
                "recipient": bot,
                "recipient_keys": {"ed25519": bot_keys["ed25519"]},
            }
            msg = session.encrypt(canonical(payload))
            out.append(
                {
                    "type": "m.room.encrypted",
                    "sender": self.user_id,
                    "to_user_id": bot,
                    "to_device_id": bot_device,
                    "content": {
                        "algorithm": OLM,
                        "sender_key": self.curve25519,
                        "ciphertext": {
                            bot_keys["curve25519"]: {
                                "type": msg.message_type,
                                "body": msg.ciphertext,
                            }
                        },
                    },
                }
            )
        return out


async def cross_sign(base_url: str, token: str, user_id: str, device_id: str) -> None:
    """Give a user cross-signing keys (master, self-signing) and sign its device with them,
    as Element does at a first login: mautrix then resolves the trust of each decrypted
    message through them (without, it logs a warning per message). The device's keys are
    read back from the homeserver, so this works for any client's device (matrix-nio too)."""
    import olm

    master = olm.PkSigning(olm.PkSigning.generate_seed())
    ssk = olm.PkSigning(olm.PkSigning.generate_seed())
    master_key = {
        "user_id": user_id,
        "usage": ["master"],
        "keys": {f"ed25519:{master.public_key}": master.public_key},
    }
    ssk_key: dict[str, Any] = {
        "user_id": user_id,
        "usage": ["self_signing"],
        "keys": {f"ed25519:{ssk.public_key}": ssk.public_key},
    }
    ssk_key["signatures"] = {
        user_id: {f"ed25519:{master.public_key}": master.sign(canonical(ssk_key))}
    }
    await cs_request(
        base_url,
        token,
        "POST",
        "/keys/device_signing/upload",
        {"master_key": master_key, "self_signing_key": ssk_key},
    )
    found = await cs_request(
        base_url, token, "POST", "/keys/query", {"device_keys": {user_id: [device_id]}}
    )
    device = dict(found["device_keys"][user_id][device_id])
    device.pop("unsigned", None)
    signatures = device.pop("signatures", {})
    signature = ssk.sign(canonical(device))
    device["signatures"] = {
        **signatures,
        user_id: {**signatures.get(user_id, {}), f"ed25519:{ssk.public_key}": signature},
    }
    await cs_request(
        base_url, token, "POST", "/keys/signatures/upload", {user_id: {device_id: device}}
    )


async def register_senders(synapse: Any, senders: list[str]) -> dict[str, Sender]:
    """Each sender registered on Synapse, with its Olm device's keys uploaded."""
    out: dict[str, Sender] = {}
    sem = asyncio.Semaphore(8)

    async def one(user_id: str) -> None:
        async with sem:
            client = await synapse.register_user(user_id[1:].split(":", 1)[0])
            sender = Sender(client.user_id, client.device_id, client.access_token)
            await client.close()
            await cs_request(
                synapse.base_url,
                sender.token,
                "POST",
                "/keys/upload",
                {"device_keys": sender.device_keys()},
            )
            await cross_sign(synapse.base_url, sender.token, sender.user_id, sender.device_id)
            out[user_id] = sender

    await asyncio.gather(*(one(u) for u in senders))
    return out


async def cs_request(base_url: str, token: str, method: str, path: str, body: Any) -> Any:
    url = f"{base_url}/_matrix/client/v3{path}"
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, url, json=body, headers=headers) as r,
    ):
        data = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {data}")
        return data


def in_rooms(bodies: list[bytes], rooms: dict[str, str]) -> list[bytes]:
    """The bodies with their (made-up) room ids replaced by real ones."""
    out = []
    for body in bodies:
        for old, new in rooms.items():
            body = body.replace(old.encode(), new.encode())
        out.append(body)
    return out


def encrypt_bodies(bodies: list[bytes], senders: dict[str, Sender]) -> list[bytes]:
    """The transactions with every event encrypted by its sender's session for its room
    (in order: each session's message index rises through the stream, as a client's does)."""
    out = []
    for body in bodies:
        data = json.loads(body)
        data["events"] = [senders[e["sender"]].encrypt_event(e) for e in data["events"]]
        out.append(json.dumps(data).encode())
    return out


async def key_transactions(
    synapse: Any, senders: dict[str, Sender], bot: str, bot_device: str, bot_keys: dict[str, str]
) -> tuple[list[bytes], int]:
    """Transactions of the to-device messages with every sender's room keys (at most 100 to
    a transaction, as Synapse sends them); and how many room keys they hold. A transaction
    with each room's ``m.room.encryption`` comes first, as it did when the rooms became
    encrypted (a room key is taken only for a room the bridge knows to be encrypted; in this
    bench the bot is in no room on the homeserver it could ask)."""
    rooms = sorted({room for sender in senders.values() for room in sender.group})
    first = next(iter(senders.values())).user_id
    now = int(time.time() * 1000)
    state = [
        {
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": MEGOLM},
            "room_id": room,
            "sender": first,
            "event_id": f"$bench-encryption-{i:06d}",
            "origin_server_ts": now,
        }
        for i, room in enumerate(rooms)
    ]
    messages: list[dict[str, Any]] = []
    for sender in senders.values():
        claim = await cs_request(
            synapse.base_url,
            sender.token,
            "POST",
            "/keys/claim",
            {"one_time_keys": {bot: {bot_device: "signed_curve25519"}}},
        )
        keys = claim["one_time_keys"][bot][bot_device]
        (key,) = keys.values()
        messages.extend(sender.room_key_messages(bot, bot_device, bot_keys, key["key"]))
    bodies = [json.dumps({"events": state}).encode()]
    bodies += [
        json.dumps({"events": [], "de.sorunome.msc2409.to_device": messages[i : i + 100]}).encode()
        for i in range(0, len(messages), 100)
    ]
    return bodies, len(messages)


class EncryptedSetup:
    """Synapse for the bridge's device, the senders' devices, the encrypted bodies."""

    def __init__(self, workdir: Path, domain: str) -> None:
        from bridgekit.testing.synapse import SynapseServer

        self.reg_path = workdir / "registration.yaml"
        self.synapse = SynapseServer(workdir / "synapse", [self.reg_path], server_name=domain)
        self.senders: dict[str, Sender] = {}
        self.timings: dict[str, float] = {}
        self.room_keys = 0
        #: Leave the senders' devices for the first decryptions to fetch (see deliver_keys).
        self.cold_devices = False

    def register(self, config: Any) -> None:
        """The bridge's registration (from its config, as ``generate-registration``)."""
        from bridgekit.registration import generate
        from bridgekit.testing.fake import FakeConnector

        generate(config, {"fake": FakeConnector}, self.reg_path)
        self.as_token = str(config["appservice.as_token"])
        self.bot = f"@{config['appservice.bot.username']}:{self.synapse.server_name}"

    async def make_rooms(self, count: int) -> list[str]:
        """``count`` encrypted rooms made by the bot, as portal rooms are: the bridge reads
        their state (power levels, for room mentions) once and then from its caches, and
        knows them encrypted. (Rooms that do not exist would cost a failing request to the
        homeserver per event.)"""
        localpart = self.bot[1:].split(":", 1)[0]
        url = f"{self.synapse.base_url}/_matrix/client/v3/register"
        headers = {"Authorization": f"Bearer {self.as_token}"}
        body = {"type": "m.login.application_service", "username": localpart}
        async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
            if r.status not in (200, 400):  # 400: M_USER_IN_USE
                raise RuntimeError(f"registering the bot: {r.status} {await r.text()}")
        rooms = []
        for _ in range(count):
            created = await cs_request(
                self.synapse.base_url,
                self.as_token,
                "POST",
                f"/createRoom?user_id={quote(self.bot)}",
                {
                    "preset": "private_chat",
                    "initial_state": [
                        {
                            "type": "m.room.encryption",
                            "state_key": "",
                            "content": {"algorithm": MEGOLM},
                        }
                    ],
                },
            )
            rooms.append(created["room_id"])
        return rooms

    async def start(self, senders: list[str], rooms: int) -> list[str]:
        """Start Synapse, make the rooms and the senders' devices; the rooms' ids."""
        t = time.perf_counter()
        await asyncio.to_thread(self.synapse.start)
        self.timings["synapse_start_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        room_ids = await self.make_rooms(rooms)
        self.senders = await register_senders(self.synapse, senders)
        self.timings["rooms_and_senders_s"] = round(time.perf_counter() - t, 1)
        return room_ids

    def encrypt(self, bodies: list[bytes]) -> list[bytes]:
        t = time.perf_counter()
        out = encrypt_bodies(bodies, self.senders)
        self.timings["encrypt_s"] = round(time.perf_counter() - t, 2)
        return out

    async def deliver_keys(self, server: Any, send: Any) -> None:
        """Give the bridge every room key (to-device messages in transactions) and check that
        it holds them all before anything is measured."""
        bridge = server.bridge
        backend = bridge.encryption.backend
        account = backend.machine.account
        t = time.perf_counter()
        bodies, self.room_keys = await key_transactions(
            self.synapse,
            self.senders,
            bridge.bot_mxid,
            backend.device_id,
            account.identity_keys,
        )
        await send(bodies)
        missing = 0
        for sender in self.senders.values():
            for room_id, session in sender.group.items():
                if not await backend.has_room_key(room_id, session.id):
                    missing += 1
        if missing:
            raise RuntimeError(f"the bridge did not take {missing} of {self.room_keys} room keys")
        if not self.cold_devices:
            # The senders' devices, as the bridge would know them from earlier messages. The
            # first decryption of each sender's message fetches them (/keys/query) and writes
            # them (put_devices) in a transaction that a concurrent write of the bridge can
            # make fail with "database is locked" on SQLite: that event is then lost
            # (--cold-devices shows it; bench/README.md).
            for sender in self.senders.values():
                await backend.machine.get_or_fetch_device_by_key(sender.user_id, sender.curve25519)
        self.timings["keys_s"] = round(time.perf_counter() - t, 2)

    def stop(self) -> None:
        self.synapse.stop()


async def check_all_handled(
    server: Any, expected: int, prefix: str, limit_s: float = 30
) -> dict[str, Any]:
    """Every encrypted event decrypted and bridged: one message mapping per event, none
    waiting for a key, no decryption failure. An event whose decryption failed for a passing
    reason waits and is tried again within seconds (crypto/waiting.py): up to ``limit_s`` is
    given for that. Raises (the run fails) otherwise."""
    bridge = server.bridge
    deadline = time.perf_counter() + limit_s
    while True:
        mapped = await bridge.db.fetchval(
            "SELECT count(*) FROM message WHERE event_id LIKE $1", prefix + "%"
        )
        out = {"mapped": int(mapped or 0), "expected": expected}
        if bridge.encryption is not None:
            out.update(bridge.encryption.figures())
            out["waiting_db"] = await bridge.encryption.waiting_count()
        bad = (
            out["mapped"] != expected
            or out.get("waiting_events")
            or out.get("waiting_db")
            or out.get("decryption_failures")
        )
        if not bad:
            return out
        if time.perf_counter() > deadline or out.get("decryption_failures"):
            raise RuntimeError(f"{server.name}: not every event was decrypted and bridged: {out}")
        await asyncio.sleep(0.5)
