"""The :class:`~bridgekit.crypto.backend.CryptoBackend` on mautrix.crypto (libolm).

mautrix's ``OlmMachine`` keeps the Olm account and sessions in its ``PgCryptoStore``, here on
the bridge's own database (SQLite or PostgreSQL; its tables are ``crypto_*``, versioned in
``crypto_version``). What this adds to it, beyond the bridge glue:

* the device is made with MSC4190 (``PUT /devices/{id}`` as the appservice), never by login;
* at every start, the homeserver must still have the device and the same identity keys as
  the database (:class:`DeviceMismatch` otherwise: a clear refusal, not a keyless device);
* a fallback key is uploaded at every start and whenever the homeserver says it was used
  (mautrix never uploads one, and one-time keys run out while the bridge is down), once per
  use: see :data:`FALLBACK_SETTLE`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from mautrix.api import Method, Path
from mautrix.client import Client
from mautrix.crypto import OlmMachine, PgCryptoStore, RejectKeyShare
from mautrix.crypto.signature import sign_olm
from mautrix.crypto.store import StateStore
from mautrix.errors import (
    DecryptionError,
    EncryptionError,
    MatrixRequestError,
    MNotFound,
    SessionNotFound,
)
from mautrix.types import (
    ASToDeviceEvent,
    DeviceIdentity,
    DeviceLists,
    DeviceOTKCount,
    EncryptedEvent,
    EventType,
    RequestedKeyInfo,
    RoomEncryptionStateEventContent,
    RoomKeyWithheldCode,
    SerializerError,
    TrustState,
    UserID,
)
from mautrix.util.async_db import Database

from ..settings import EncryptionSettings
from .backend import DeviceMismatch, HomeserverNotReady, KeyMissing, RoomInfo, Undecryptable

log = logging.getLogger("bridgekit.crypto")

#: What the bot's device is called in users' device lists.
DEVICE_NAME = "bridgekit bridge"
#: /sync as the bot's device brings only what is not about rooms (they come in transactions).
_SYNC_FILTER = json.dumps(
    {
        "room": {"rooms": []},
        "presence": {"types": []},
        "account_data": {"types": []},
    },
    separators=(",", ":"),
)

#: Seconds after a fallback key upload during which "the fallback key was used" is taken for a
#: report computed before it, unless one since said the new key is unused. One use is reported
#: by several transactions and the /sync at once; a new key for each would make the account
#: forget the used key (libolm keeps the current and the previous fallback key only) while
#: the pre-key messages of the clients that claimed it may still be on their way.
FALLBACK_SETTLE = 30.0


class _RoomState(StateStore):
    """mautrix's view of room encryption, answered from the runtime's :class:`RoomInfo`."""

    def __init__(self, rooms: RoomInfo) -> None:
        self.rooms = rooms

    async def is_encrypted(self, room_id: str) -> bool:
        return await self.rooms.encryption_of(room_id) is not None

    async def get_encryption_info(self, room_id: str) -> RoomEncryptionStateEventContent | None:
        content = await self.rooms.encryption_of(room_id)
        if content is None:
            return None
        return RoomEncryptionStateEventContent.deserialize(content)

    async def find_shared_rooms(self, user_id: str) -> list[str]:
        return self.rooms.rooms_shared_with(user_id)


class MautrixCrypto:
    """The bot's device on mautrix.crypto (see the module docstring)."""

    def __init__(
        self,
        *,
        homeserver: str,
        bot_mxid: str,
        as_token: str,
        session: aiohttp.ClientSession,
        db: Database,
        settings: EncryptionSettings,
        rooms: RoomInfo,
    ) -> None:
        self.rooms = rooms
        self.settings = settings
        self.db = db
        self.bot_mxid = bot_mxid
        self.device_id = ""
        self.store = PgCryptoStore(bot_mxid, settings.pickle_key, db)
        self.client = Client(
            mxid=UserID(bot_mxid),
            base_url=homeserver,
            token=as_token,
            client_session=session,
            log=logging.getLogger("bridgekit.crypto.client"),
        )
        self.client.api.as_user_id = UserID(bot_mxid)
        self.machine = OlmMachine(
            self.client, self.store, _RoomState(rooms), log=logging.getLogger("bridgekit.crypto")
        )
        self.machine.allow_key_share = self._allow_key_share
        keys = settings.delete_keys
        self.machine.delete_outbound_keys_on_ack = keys.delete_outbound_on_ack
        self.machine.dont_store_outbound_keys = keys.dont_store_outbound
        self.machine.delete_previous_keys_on_receive = keys.delete_prev_on_new_session
        self.machine.delete_fully_used_keys_on_decrypt = keys.delete_fully_used_on_decrypt
        self.machine.delete_keys_on_device_delete = keys.delete_on_device_delete
        self._otk_count = 0
        self._next_batch = ""
        #: When the last fallback key was uploaded (monotonic), and whether a report since
        #: said it is unused (then the next "used" is a real use).
        self._fallback_at = 0.0
        self._fallback_confirmed = True

    # -- start-up ------------------------------------------------------------------------------

    async def start(self) -> None:
        await PgCryptoStore.upgrade_table.upgrade(self.db)
        await self.store.open()
        device_id = await self.store.get_device_id()
        known = bool(device_id)
        if device_id:
            await self._check_device_exists(device_id)
        else:
            device_id = "BK" + secrets.token_hex(5).upper()
            log.info("Creating the bot's device %s (MSC4190)", device_id)
        # MSC4190: the appservice makes (or keeps) its bot's device; no login, no token.
        await self._put_device(device_id, check=not known)
        self.device_id = device_id
        self.client.device_id = device_id
        self.client.api.as_device_id = device_id
        await self.machine.load()
        assert self.machine.account is not None
        if not await self.store.get_device_id():
            await self.store.put_device_id(device_id)
        if self.machine.account.shared:
            await self._check_keys_on_server()
        await self.machine.share_keys()  # device keys if new, one-time keys up to half
        await self.upload_fallback_key()
        await self._cross_sign()
        log.info(
            "End-to-bridge encryption: device %s of %s, identity key %s",
            device_id,
            self.bot_mxid,
            self.machine.account.identity_key,
        )

    async def _put_device(self, device_id: str, *, check: bool) -> None:
        """Create the device (MSC4190), or refuse to start: without it there are no keys for
        users' clients to encrypt to. A homeserver without MSC4190 answers ``PUT /devices``
        for an unknown device with 404 (it only renames existing devices), or ignores it."""
        try:
            await self.client.api.request(
                Method.PUT, Path.v3.devices[device_id], {"display_name": DEVICE_NAME}
            )
            if check:
                await self.client.api.request(Method.GET, Path.v3.devices[device_id])
        except MatrixRequestError as e:
            raise HomeserverNotReady(
                f"the homeserver did not create the bot's encryption device {device_id} "
                f"({e.http_status} {e.errcode}: {e.message}): it does not let an appservice "
                "create its users' devices (MSC4190, PUT /_matrix/client/v3/devices/{id} as "
                "the appservice). End-to-bridge encryption needs a homeserver that does (a "
                "recent Synapse does it for every appservice) and, for MAS / next-gen auth, "
                "`io.element.msc4190: true` in the registration it loaded (run "
                "generate-registration again with encryption.allow: true, and restart the "
                "homeserver with the new file). Or set encryption.allow: false."
            ) from e

    async def _check_device_exists(self, device_id: str) -> None:
        try:
            await self.client.api.request(Method.GET, Path.v3.devices[device_id])
        except MNotFound as e:
            raise DeviceMismatch(
                f"the database has the bot's encryption device {device_id}, but the homeserver "
                f"has no such device for {self.bot_mxid} (a new or restored homeserver, or the "
                "device was deleted). The keys in the database cannot be used: delete the "
                "crypto_* tables of the bridge's database (encrypted history the bridge held "
                "keys for is lost) and start again, or give the bridge its old homeserver."
            ) from e

    async def _check_keys_on_server(self) -> None:
        assert self.machine.account is not None
        resp = await self.client.api.request(
            Method.POST,
            Path.v3.keys.query,
            {"device_keys": {self.bot_mxid: [self.device_id]}},
        )
        device = ((resp.get("device_keys") or {}).get(self.bot_mxid) or {}).get(self.device_id)
        keys = (device or {}).get("keys") or {}
        ours = self.machine.account.identity_keys
        theirs = {
            "ed25519": keys.get(f"ed25519:{self.device_id}"),
            "curve25519": keys.get(f"curve25519:{self.device_id}"),
        }
        if theirs != {"ed25519": ours["ed25519"], "curve25519": ours["curve25519"]}:
            raise DeviceMismatch(
                f"the homeserver's keys for the bot's device {self.device_id} "
                f"({'none' if not keys else 'different ones'}) are not the ones in the "
                "database: users' clients would encrypt to keys the bridge does not hold. "
                "Delete the crypto_* tables of the bridge's database and start again (the "
                "device is then made anew), or restore the database that matches."
            )

    async def _cross_sign(self) -> None:
        """Give the bot cross-signing keys and sign its device with them (clients then show
        its device as its owner's), once; the recovery key goes to the database, never to the
        log. First-time cross-signing needs no interactive auth (MSC3967)."""
        trust = await self.machine.resolve_trust(self.machine.own_identity)
        if trust >= TrustState.CROSS_SIGNED_UNTRUSTED:
            return
        recovery_key = await self.machine.generate_recovery_key()
        await self.db.execute(
            "INSERT INTO crypto_secret (name, value) VALUES ('recovery_key', $1) "
            "ON CONFLICT (name) DO UPDATE SET value=excluded.value",
            recovery_key,
        )
        log.info("Cross-signed the bot's device %s (recovery key in the database)", self.device_id)

    async def upload_fallback_key(self) -> None:
        """Upload a new fallback key (the previous one stays usable for sessions already
        started with it): used when the one-time keys run out, e.g. while the bridge is down."""
        account = self.machine.account
        assert account is not None
        account.generate_fallback_key()
        fallback = account.fallback_key.get("curve25519") or {}
        body: dict[str, Any] = {}
        for key_id, key in fallback.items():
            signed: dict[str, Any] = {"key": key, "fallback": True}
            signed["signatures"] = {
                self.bot_mxid: {f"ed25519:{self.device_id}": sign_olm(signed, account)}
            }
            body[f"signed_curve25519:{key_id}"] = signed
        await self.client.api.request(Method.POST, Path.v3.keys.upload, {"fallback_keys": body})
        self._fallback_at, self._fallback_confirmed = time.monotonic(), False
        account.mark_keys_as_published()
        await self.store.put_account(account)
        log.debug("Uploaded a fallback key for device %s", self.device_id)

    async def stop(self) -> None:
        await self.store.close()

    # -- what transactions carry -------------------------------------------------------------

    async def handle_to_device(self, events: Sequence[dict[str, Any]]) -> None:
        for raw in events:
            try:
                evt = ASToDeviceEvent.deserialize(raw)
            except Exception:
                log.debug("Ignoring a malformed to-device message of type %s", raw.get("type"))
                continue
            try:
                await self.machine.handle_as_to_device_event(evt)
            except Exception:
                log.exception("Could not handle a to-device %s from %s", evt.type, evt.sender)

    async def handle_device_lists(self, changed: Sequence[str], left: Sequence[str]) -> None:
        if changed:
            # Awaited (mautrix's appservice path runs it in the background): a device that
            # joined must be known before the next message is encrypted.
            await self.machine.handle_device_lists(
                DeviceLists(changed=[UserID(u) for u in changed], left=[UserID(u) for u in left])
            )

    async def handle_key_counts(
        self, one_time_keys: int | None, unused_fallback: Sequence[str] | None
    ) -> None:
        if one_time_keys is not None:
            self._otk_count = one_time_keys
            await self.machine.handle_otk_count(DeviceOTKCount(signed_curve25519=one_time_keys))
            # mautrix tops the keys up to half its maximum: the figure says so now, not at
            # the next report (the next /sync, up to 30 s later, if nothing else comes).
            assert self.machine.account is not None
            self._otk_count = max(one_time_keys, self.machine.account.max_one_time_keys // 2)
        if unused_fallback is None:
            return
        if "signed_curve25519" in unused_fallback:
            self._fallback_confirmed = True
        elif self._fallback_confirmed or time.monotonic() - self._fallback_at > FALLBACK_SETTLE:
            log.info("The bot's fallback key was used: uploading a new one")
            await self.upload_fallback_key()

    async def sync(self, timeout_ms: int) -> dict[str, Any]:
        since = await self.store.get_next_batch()
        query = {"filter": _SYNC_FILTER, "timeout": str(timeout_ms)}
        if since:
            query["since"] = since
        resp = await self.client.api.request(Method.GET, Path.v3.sync, query_params=query)
        self._next_batch = str(resp.get("next_batch") or "")
        me, device = self.bot_mxid, self.device_id
        to_device = [
            {**m, "to_user_id": me, "to_device_id": device}
            for m in (resp.get("to_device") or {}).get("events") or ()
            if isinstance(m, dict)
        ]
        data: dict[str, Any] = {"de.sorunome.msc2409.to_device": to_device}
        lists = resp.get("device_lists")
        if isinstance(lists, dict) and (lists.get("changed") or lists.get("left")):
            data["org.matrix.msc3202.device_lists"] = lists
        counts = resp.get("device_one_time_keys_count")
        if isinstance(counts, dict):
            data["org.matrix.msc3202.device_one_time_keys_count"] = {me: {device: counts}}
        fallback = resp.get("device_unused_fallback_key_types")
        if isinstance(fallback, list):
            data["org.matrix.msc3202.device_unused_fallback_key_types"] = {me: {device: fallback}}
        return data

    async def synced(self) -> None:
        if self._next_batch:
            await self.store.put_next_batch(self._next_batch)

    async def send_to_own_device(self, event_type: str, content: dict[str, Any]) -> None:
        txn = secrets.token_hex(8)
        path = Path.v3.sendToDevice[event_type][txn]
        body = {"messages": {self.bot_mxid: {self.device_id: content}}}
        await self.client.api.request(Method.PUT, path, body)

    def one_time_key_count(self) -> int:
        return self._otk_count

    # -- room events ---------------------------------------------------------------------------

    async def decrypt(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            evt = EncryptedEvent.deserialize(event)
        except Exception as e:
            raise Undecryptable(f"malformed encrypted event: {e}") from e
        session_id = str(getattr(evt.content, "session_id", "") or "")
        try:
            decrypted = await self.machine.decrypt_megolm_event(evt)
        except SessionNotFound as e:
            raise KeyMissing(event["room_id"], session_id) from e
        except DecryptionError as e:
            raise Undecryptable(str(e) or type(e).__name__) from e
        except SerializerError as e:
            # Decrypted, but its content does not parse (an attachment's ``file`` without its
            # key): never will, so it is refused now rather than retried, holding up the room.
            raise Undecryptable(f"malformed content: {e}") from e
        out = dict(event)
        out["type"] = str(decrypted.type)
        out["content"] = decrypted.content.serialize()
        relates = event.get("content", {}).get("m.relates_to")
        if isinstance(relates, dict) and "m.relates_to" not in out["content"]:
            out["content"]["m.relates_to"] = relates  # clients put it outside, unencrypted
        return out

    async def has_room_key(self, room_id: str, session_id: str) -> bool:
        return await self.store.has_group_session(room_id, session_id)

    async def encrypt(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> dict[str, Any]:
        etype = EventType.find(event_type, t_class=EventType.Class.MESSAGE)
        try:
            encrypted = await self.machine.encrypt_megolm_event(room_id, etype, content)
        except EncryptionError:
            # No room key yet (or it expired): share one with the members' devices, once even
            # if several messages of the room are sent at the same time.
            if self.machine.is_sharing_group_session(room_id):
                await self.machine.wait_group_session_share(room_id)
            else:
                keys = await self.rooms.room_keys(room_id)
                await self.machine.share_group_session(room_id, [UserID(u) for u in keys.members])
            encrypted = await self.machine.encrypt_megolm_event(room_id, etype, content)
        return encrypted.serialize()

    async def members_changed(self, room_id: str) -> None:
        await self.store.remove_outbound_group_session(room_id)

    async def _allow_key_share(self, device: DeviceIdentity, request: RequestedKeyInfo) -> bool:
        if self.settings.allow_key_sharing != "members":
            raise RejectKeyShare(
                f"key request from {device.user_id}/{device.device_id}: key sharing is off",
                code=RoomKeyWithheldCode.UNAVAILABLE,
                reason="This bridge does not share room keys",
            )
        keys = await self.rooms.room_keys(request.room_id)
        if device.user_id not in keys.members:
            raise RejectKeyShare(
                f"key request from {device.user_id}/{device.device_id}: not in the room",
                code=RoomKeyWithheldCode.UNAUTHORIZED,
                reason="You are not in that room",
            )
        return True
