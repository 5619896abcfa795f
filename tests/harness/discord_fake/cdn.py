"""The cdn: attachments at ``/attachments/{channel}/{attachment}/{filename}`` (the bytes with
their content type; 404 for anything else) and images (avatars, guild icons: given as
bytes to ``add_user``/``add_member``/``update_user``... or ``fake.add_image``) at
``/avatars/{user}/{hash}.png``, ``/icons/{guild}/{hash}.png``,
``/guilds/{guild}/users/{user}/avatars/{hash}.png``; sticker images (``add_sticker_image``) at
``/stickers/{id}.png`` / ``.gif``, as Discord's CDN serves them."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import FakeDiscord


class Cdn:
    """Downloads (``self`` is the ``FakeDiscord``)."""

    def add_image(self: FakeDiscord, image: str | bytes | None, data: bytes | None = None) -> Any:
        """An image hash for an avatar or icon: bytes are stored under their md5 (served at
        ``/avatars/{user}/{hash}.png`` and the like); a hash string is kept as it is (with
        ``data``, those bytes are served for it); None stays None."""
        if isinstance(image, bytes):
            image_hash = hashlib.md5(image).hexdigest()
            self.images[image_hash] = image
            return image_hash
        if image is not None and data is not None:
            self.images[image] = data
        return image

    def avatar_url(self: FakeDiscord, user: Any) -> str | None:
        u = self.users[str(getattr(user, "id", user))]
        return f"{self.cdn_url}/avatars/{u.id}/{u.avatar}.png" if u.avatar else None

    def attachment_bytes(self: FakeDiscord, attachment_id: str) -> bytes | None:
        for messages in self.message_store.values():
            for msg in messages:
                for att in msg.attachments:
                    if att.id == attachment_id:
                        return att.data
        return None

    async def _attachment(self: FakeDiscord, request: web.Request) -> web.StreamResponse:
        self.cdn_requests.append(request.path_qs)
        channel, att_id = request.match_info["channel"], request.match_info["att"]
        for msg in [*self.message_store.get(channel, []), *self.deleted]:
            for att in msg.attachments:
                if att.id == att_id and att.channel_id == channel:
                    return web.Response(body=att.data, headers={"Content-Type": att.content_type})
        return web.Response(status=404, text="Not Found")

    async def _image(self: FakeDiscord, request: web.Request) -> web.StreamResponse:
        self.cdn_requests.append(request.path_qs)
        image_hash = request.match_info["file"].rsplit(".", 1)[0]
        data = self.images.get(image_hash)
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, headers={"Content-Type": "image/png"})

    def add_sticker_image(self: FakeDiscord, sticker_id: Any, data: bytes) -> None:
        """The image the cdn serves for a sticker (``/stickers/{id}.png`` or ``.gif``)."""
        self.sticker_images[str(sticker_id)] = data

    async def _sticker(self: FakeDiscord, request: web.Request) -> web.StreamResponse:
        self.cdn_requests.append(request.path_qs)
        sticker_id, _, ext = request.match_info["file"].partition(".")
        data = self.sticker_images.get(sticker_id)
        if data is None or ext not in ("png", "gif"):
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, headers={"Content-Type": f"image/{ext}"})
