"""Discord media on Matrix: attachments, embeds and stickers as the parts of a message, and
where the bridge may download anything from.

A Discord message becomes one remote message in parts (:attr:`RemoteMessage.parts`): its
text (part ""), then each attachment (``att:<id>``), each embed that says something of its
own (``embed:<n>``, its image ``embed:<n>:image``), each sticker (``sticker:<id>``). A message
without text starts with its first attachment.

Every URL comes from Discord's JSON (an attachment's ``url``, an embed's image, the CDN base
of avatars and stickers), which anyone who can post can shape: the bridge downloads only
from the operator's ``media_hosts`` and the ``api_url``'s host (:meth:`DiscordMedia.allowed`),
through the runtime's guarded fetcher (no redirects, capped at ``media.max_size``). A file
that is not copied (too large, gone, elsewhere) becomes a notice with its link: the message
is never lost for it. Discord's CDN needs no token, so nothing secret goes with a download.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bridgekit.contract.connector import MediaError
from bridgekit.contract.events import MessageContent, MessagePart
from bridgekit.contract.file_checks import (
    allowed_file_url,
    allowed_hosts,
    clean_mime,
    clean_name,
    human_size,
    media_kind,
)

from . import config as cfg
from .embeds import embed_content, embed_image_url, is_link_preview

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.media")

#: Discord allows 10 attachments, 10 embeds and 3 stickers a message.
MAX_ATTACHMENTS = 10
MAX_EMBEDS = 10
MAX_STICKERS = 3
#: Discord marks an attachment as a spoiler by this prefix of its file name.
SPOILER_PREFIX = "SPOILER_"
#: ``info`` key saying a file was a spoiler on Discord (Matrix has no spoiler for files).
SPOILER_INFO = "org.bridgekit.discord.spoiler"


def _dimension(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 20:
        return value
    return None


class DiscordMedia:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        config = connector.config
        self.hosts = allowed_hosts(cfg.api_url(config), cfg.setting(config, "media_hosts"))

    def allowed(self, url: object) -> bool:
        """Whether the bridge may download ``url``: http(s) to an allowed host."""
        return allowed_file_url(url, self.hosts)

    def allowed_or_none(self, url: str | None) -> str | None:
        """``url`` if it may be downloaded (an avatar, an icon), else None (logged)."""
        if url is None or self.allowed(url):
            return url
        log.warning("Not using image %s: not on an allowed Discord media host", _short(url))
        return None

    # -- Discord -> Matrix -------------------------------------------------------------------

    async def parts(
        self, client: DiscordClient, message: discord.Message, text: MessageContent
    ) -> list[MessagePart]:
        """``message`` as message parts: ``text`` (when there is any), its attachments,
        embeds and stickers; each in the text's thread, the first one replying where the
        text does."""
        parts: list[MessagePart] = []
        if text.body.strip():
            parts.append(MessagePart("", text))
        for att in message.attachments[:MAX_ATTACHMENTS]:
            parts.append(MessagePart(f"att:{att.id}", await self.attachment(att)))
        for n, embed in enumerate(message.embeds[:MAX_EMBEDS]):
            if is_link_preview(embed, message.content):
                continue  # Discord's preview of a link in the text: the text has the link
            image = embed_image_url(embed)
            copy_image = image is not None and self.allowed(image)
            content = embed_content(embed, image_link=None if copy_image else image)
            if content is not None:
                parts.append(MessagePart(f"embed:{n}", content))
            if copy_image and image is not None:
                name = clean_name(image.split("?")[0].rsplit("/", 1)[-1], "image")
                parts.append(
                    MessagePart(f"embed:{n}:image", await self.copy(image, name, None, image))
                )
        for sticker in message.stickers[:MAX_STICKERS]:
            parts.append(MessagePart(f"sticker:{sticker.id}", await self.sticker(sticker)))
        if not parts:
            return [MessagePart("", text)]
        for i, part in enumerate(parts):
            if part.content is text:
                continue
            part.content.thread_root = text.thread_root
            if i == 0:
                part.content.reply_to = text.reply_to
        return parts

    async def attachment(self, att: discord.Attachment) -> MessageContent:
        """One attachment as Matrix content: the file, or a notice with its link."""
        name = clean_name(att.filename)
        info: dict[str, Any] = {}
        for key, value in (("w", att.width), ("h", att.height)):
            if _dimension(value) is not None:
                info[key] = value
        duration = getattr(att, "duration", None)
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration > 0:
            info["duration"] = int(duration * 1000)
        if att.filename.startswith(SPOILER_PREFIX):
            info[SPOILER_INFO] = True
        return await self.copy(att.url, name, att.content_type, att.url, info, size=att.size)

    async def sticker(self, sticker: discord.StickerItem) -> MessageContent:
        """A sticker: its image (PNG, APNG, GIF from the CDN); a Lottie one (JSON, which
        Matrix clients do not draw) as its name."""
        name = clean_name(sticker.name, "sticker")
        if sticker.format is discord.StickerFormatType.lottie:
            return MessageContent(f"[sticker: {name}]", msgtype="m.notice")
        ext = "gif" if sticker.format is discord.StickerFormatType.gif else "png"
        url = f"{cfg.cdn_url(self.connector.config)}/stickers/{sticker.id}.{ext}"
        content = await self.copy(url, f"{name}.{ext}", f"image/{ext}", url)
        if content.media_url:
            content.body = name
        return content

    async def copy(
        self,
        url: str,
        name: str,
        claimed_mime: str | None,
        link: str,
        info: dict[str, Any] | None = None,
        *,
        size: int | None = None,
    ) -> MessageContent:
        """The file at ``url`` copied to Matrix (the kind of event follows its bytes), or a
        notice saying why not, with ``link``."""

        def instead(why: str) -> MessageContent:
            shown = link if link.startswith(("https://", "http://")) else ""
            return MessageContent(
                f"📎 {name}: {why}" + (f" ({shown})" if shown else ""), msgtype="m.notice"
            )

        if not self.allowed(url):
            log.warning("Not downloading %s: not on an allowed Discord media host", _short(url))
            return instead("not on a Discord media host, so it was not downloaded")
        try:
            data, got = await self.connector.bridge.fetch_media(url, follow_redirects=False)
        except MediaError as e:
            if e.too_large:
                shown = f" ({human_size(size)})" if isinstance(size, int) and size > 0 else ""
                return instead(f"too large to bridge{shown}")
            log.info("Could not download %s: %s", _short(url), e)
            return instead(f"could not be downloaded ({e})")
        msgtype, mime = media_kind(claimed_mime or clean_mime(got), data)
        mxc = await self.connector.bridge.upload_media(data, mime, name)
        media_info: dict[str, Any] = {"mimetype": mime, "size": len(data)}
        for key, value in (info or {}).items():
            if key in ("w", "h") and msgtype not in ("m.image", "m.video"):
                continue
            if key == "duration" and msgtype not in ("m.audio", "m.video"):
                continue
            media_info[key] = value
        return MessageContent(name, msgtype=msgtype, media_url=mxc, media_info=media_info)


def _short(url: str) -> str:
    """A URL for the log without its query (Discord's signed CDN parameters)."""
    return url.split("?", 1)[0][:200]
