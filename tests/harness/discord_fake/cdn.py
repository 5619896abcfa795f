"""The cdn: attachments at ``/attachments/{channel}/{attachment}/{filename}`` (the bytes with
their content type; 404 for anything else) and images (avatars, guild icons) that tests
register with ``fake.add_image(hash, bytes)`` at ``/avatars/{user}/{hash}.png`` etc."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .server import FakeDiscord


class Cdn:
    """Downloads (``self`` is the ``FakeDiscord``)."""

    def add_image(self: FakeDiscord, image_hash: str, data: bytes) -> str:
        """Registers image bytes under a hash (use it as a user's or member's ``avatar``)."""
        self.images[image_hash] = data
        return image_hash

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
