"""Who speaks for a remote event on Matrix: ghosts, double puppets, the bot.

Ghosts are registered, given the remote user's name and avatar, and joined lazily; striped
locks keep the first sightings of one ghost (a member sync and a message at once) from racing.
A remote event the logged-in user sent themself appears from their real Matrix account when
double puppeting is set up (a shared secret or ``login-matrix``), and from their ghost otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from mautrix.appservice import IntentAPI

from ..contract.connector import NetworkClient
from ..contract.events import EventSender, RemoteUserInfoChange
from ..matrix.client import with_retries
from ..matrix.encrypted_media import download, encrypt
from ..objects.ghost import Ghost
from ..objects.portal import Portal
from .clients import client_for
from .room_profiles import RoomProfiles

if TYPE_CHECKING:
    from ..config import Config
    from ..database.store import Store
    from ..matrix.client import MatrixClient
    from ..matrix.fetcher import MediaFetcher

log = logging.getLogger("bridgekit.portal.portals")


async def _replay(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


class Puppets:
    """Ghost intents and profiles, double puppets, and media copied to the homeserver."""

    def __init__(
        self,
        *,
        matrix: MatrixClient,
        store: Store,
        fetcher: MediaFetcher,
        config: Config,
        clients: Mapping[str, NetworkClient],
        ghost_mxid: Callable[[str, str], str],
    ) -> None:
        self.matrix = matrix
        self.store = store
        self.fetcher = fetcher
        self.config = config  # read when used: Config.set resets its settings
        self.clients = clients  # the live map of loaded logins (Bridge.clients)
        self.ghost_mxid = ghost_mxid
        self._ghost_locks = [asyncio.Lock() for _ in range(64)]
        self._avatar_locks = [asyncio.Lock() for _ in range(16)]
        self.room_profiles = RoomProfiles(self.avatar_mxc)

    async def ghost_intent(
        self,
        network: str,
        remote_id: str,
        client: NetworkClient | None,
        portal: Portal | None,
        *,
        name: str | None = None,
    ) -> IntentAPI:
        mxid = self.ghost_mxid(remote_id, network)
        intent = self.matrix.intent(mxid)
        # Striped locks: concurrent first sightings of one ghost (member sync and a message)
        # must not race each other's profile updates.
        async with self._ghost_locks[hash((network, remote_id)) % len(self._ghost_locks)]:
            await self._ensure_ghost(network, remote_id, mxid, intent, client, name)
        if portal is not None and portal.mxid:
            await with_retries(
                lambda: intent.ensure_joined(portal.mxid), what=f"joining {mxid} to {portal.mxid}"
            )
        return intent

    async def _ensure_ghost(
        self,
        network: str,
        remote_id: str,
        mxid: str,
        intent: IntentAPI,
        client: NetworkClient | None,
        name: str | None,
        *,
        avatar_url: str | None = None,
        is_bot: bool | None = None,
    ) -> None:
        """Register the ghost at first sight (asking the network for what the caller did not
        say), then bring its profile to what is reported: only what differs from the ghost's
        row costs a homeserver request."""
        # The store builds Ghost objects (Store.set_factories): one per ghost.
        ghost = cast(Ghost | None, await self.store.get_ghost(network, remote_id))
        changed = ghost is None
        if ghost is None:
            ghost = cast(Ghost, self.store.new_ghost(network, remote_id, mxid))
            await with_retries(intent.ensure_registered, what=f"registering {mxid}")
            info = None
            if client is not None and (not name or avatar_url is None or is_bot is None):
                try:
                    info = await client.get_user_info(remote_id)
                except Exception:
                    log.warning("Could not fetch user info of %s", remote_id)
            name = name or (info.name if info else None) or ""
            if avatar_url is None and info is not None:
                avatar_url = info.avatar_url
            if is_bot is None and info is not None:
                is_bot = info.is_bot
        if await ghost.update_info(intent, name, avatar_url, is_bot, avatar_mxc=self.avatar_mxc):
            changed = True
            self.room_profiles.forget(mxid)  # the homeserver rewrote its member events
        if changed:
            await ghost.save()

    async def remote_user_info(
        self, network: str, login_id: str | None, evt: RemoteUserInfoChange
    ) -> None:
        """A remote profile change reaches the ghost, in a room or not (see
        :class:`~bridgekit.contract.events.RemoteUserInfoChange`)."""
        if evt.sender is None or not evt.sender.remote_id:
            return
        remote_id = evt.sender.remote_id
        mxid = self.ghost_mxid(remote_id, network)
        intent = self.matrix.intent(mxid)
        client = client_for(self.clients, network, evt.portal, evt.sender.login_id or login_id)
        async with self._ghost_locks[hash((network, remote_id)) % len(self._ghost_locks)]:
            await self._ensure_ghost(
                network,
                remote_id,
                mxid,
                intent,
                client,
                evt.name,
                avatar_url=evt.avatar_url,
                is_bot=evt.is_bot,
            )

    async def avatar_mxc(self, url: str) -> str:
        """An avatar's ``mxc://`` URI: an http(s) image is fetched through the guarded fetcher
        and uploaded only if no ghost or room has the same bytes already."""
        if url.startswith("mxc://"):
            return url
        async with self.fetcher.open(url) as body:
            data = bytes(await body.read())
            mime = body.mime
        return await self.upload_avatar(data, mime)

    async def upload_avatar(self, data: bytes, mime_type: str) -> str:
        """Upload an avatar once per distinct image (keyed by the SHA-256 of its bytes)."""
        digest = hashlib.sha256(data).hexdigest()
        async with self._avatar_locks[int(digest[:8], 16) % len(self._avatar_locks)]:
            mxc = await self.store.get_avatar(digest)
            if mxc is None:
                bot = self.matrix.bot
                assert bot is not None
                mxc = str(
                    await with_retries(
                        lambda: bot.upload_media(data, mime_type=mime_type, filename="avatar"),
                        what="uploading an avatar",
                        max_attempts=5,
                    )
                )
                await self.store.save_avatar(digest, mxc)
        return mxc

    async def to_mxc(self, url: str, filename: str = "file") -> str:
        """Reuse ``mxc://`` URIs; copy http(s) URLs to the homeserver through the guarded
        fetcher (:class:`~bridgekit.matrix.fetcher.FetchError` when it will not). A homeserver
        hiccup retries the copy; a refusal or a failing remote server does not."""
        if url.startswith("mxc://"):
            return url
        return await with_retries(
            lambda: self._copy_media(url, filename), what="copying remote media", max_attempts=3
        )

    async def _copy_media(self, url: str, filename: str) -> str:
        bot = self.matrix.bot
        assert bot is not None
        async with self.fetcher.open(url) as body:
            if body.size:  # streamed through: Synapse needs the size before the bytes
                mxc = await bot.upload_media(
                    body.chunks(), mime_type=body.mime, filename=filename, size=body.size
                )
                return str(mxc)
            # No size announced: the chunks are kept (at most the cap, never copied into one
            # buffer) until the size is known.
            parts = [chunk async for chunk in body.chunks()]
        size = sum(len(part) for part in parts)
        data = _replay(parts) if size else b""
        return str(await bot.upload_media(data, mime_type=body.mime, filename=filename, size=size))

    async def to_encrypted_file(self, url: str, filename: str = "file") -> dict[str, Any]:
        """A remote file as an encrypted attachment for an encrypted room: its bytes (an
        http(s) URL through the guarded fetcher, an ``mxc://`` URI a connector uploaded from
        the homeserver) encrypted, the ciphertext uploaded, and the event's ``file`` object.
        :class:`~bridgekit.contract.connector.MediaError` when it cannot be read."""
        if url.startswith("mxc://"):
            data, _ = await download(self.matrix, url, self.config.settings.media.max_size)
        else:
            async with self.fetcher.open(url) as body:
                data = bytes(await body.read())
        ciphertext, file = await encrypt(data)
        bot = self.matrix.bot
        assert bot is not None
        mxc = await with_retries(
            lambda: bot.upload_media(
                ciphertext, mime_type="application/octet-stream", filename=filename
            ),
            what="uploading an encrypted file",
            max_attempts=3,
        )
        return {"url": str(mxc), **file}

    async def double_puppet_intent(self, user_mxid: str) -> IntentAPI | None:
        user = await self.store.get_user(user_mxid)
        token = user.double_puppet if user else None
        if not token:
            secrets = self.config.settings.double_puppet.secrets
            token = secrets.get(user_mxid.split(":", 1)[1])
        if not token:
            return None
        # Real users exist already: never try to register them as appservice users.
        await self.matrix.state_store.registered(user_mxid)
        return self.matrix.real_user_intent(user_mxid, token)

    async def sender_intent(
        self,
        portal: Portal,
        sender: EventSender | None,
        login_id: str | None,
        *,
        join: bool = True,
    ) -> IntentAPI:
        """Who speaks for ``sender`` in ``portal``: the bot, the user's double puppet, or the
        ghost (registered and named first), joined to the portal room unless ``join`` is False
        (for what is not said in the room, like presence)."""
        bot = self.matrix.bot
        assert bot is not None
        if sender is None:
            return bot
        client = client_for(self.clients, portal.network, portal.key, sender.login_id or login_id)
        if sender.is_me and client is not None:
            dp = await self.double_puppet_intent(client.login.user_mxid)
            if dp is not None:
                assert portal.mxid
                if join and not await self.matrix.state_store.is_joined(portal.mxid, dp.mxid):
                    await with_retries(
                        lambda: dp.ensure_joined(portal.mxid, bot=bot), what="double puppet join"
                    )
                return dp
        intent = await self.ghost_intent(
            portal.network, sender.remote_id, client, portal if join else None, name=sender.name
        )
        if join and portal.mxid:
            await self.room_profiles.apply(
                intent, portal.mxid, sender.room_name, sender.room_avatar_url
            )
        return intent
