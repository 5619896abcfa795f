"""Matrix files to Discord.

An ``m.image``/``m.file``/``m.video``/``m.audio`` is read from the homeserver and uploaded
(multipart, discord.py's :class:`discord.File`) through the channel's webhook for a relayed
sender, or as the login's own account, with its caption (the body, when it is not the file
name). A file over ``max_file_size`` (Discord's upload limit for the server) is not refused:
it becomes a link to it, through the runtime's signed media links. The uploaded message's id
maps to the Matrix event; its gateway echo is the bridge's own webhook's (or own account's)
and is not bridged back.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.utils import escape_markdown

from bridgekit.contract.capabilities import SendRefused
from bridgekit.contract.connector import MediaError
from bridgekit.contract.events import MatrixMessage, RemoteMessageID
from bridgekit.contract.file_checks import clean_name, human_size
from bridgekit.contract.results import MessageResult

from . import config as cfg
from .outbound import WebhooksForbidden

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector

log = logging.getLogger("bridgekit.discord.uploads")

MEDIA_MSGTYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})


class _BytesFile(discord.File):
    """A file in memory that can be sent again (a webhook made anew after a 404 sends the
    same file twice): every attempt starts at its first byte."""

    def reset(self, *, seek: int | bool = True) -> None:
        self.fp.seek(self._original_pos)


class Uploads:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector
        self.max_size = int(cfg.setting(connector.config, "max_file_size"))

    @staticmethod
    def is_file(msg: MatrixMessage) -> bool:
        return msg.content.msgtype in MEDIA_MSGTYPES and bool(msg.content.media_url)

    async def send(self, client: DiscordClient, msg: MatrixMessage) -> MessageResult:
        """A Matrix file to Discord: uploaded, or a link to it when Discord would refuse it
        for its size."""
        content = msg.content
        raw = msg.raw if isinstance(msg.raw, dict) else {}
        name = clean_name(raw.get("filename") or content.body)
        caption = self.caption(client, msg, raw)
        mxc = str(content.media_url)
        declared = content.media_info.get("size")
        data: bytes | None = None
        if not (isinstance(declared, int) and declared > self.max_size):
            try:
                data, _ = await self.connector.bridge.download_media(mxc, self.max_size)
            except MediaError as e:
                if not e.too_large:
                    raise SendRefused(f"the file could not be read: {e}", retriable=True) from e
        if data is None:
            size = declared if isinstance(declared, int) else None
            return await self.send_link(client, msg, mxc, name, caption, size)
        if not data:
            raise SendRefused("the file is empty")
        file = _BytesFile(io.BytesIO(data), filename=name)
        sent = await self.deliver(client, msg, caption, file=file)
        return MessageResult(remote_id=RemoteMessageID(str(sent.id)))

    async def send_link(
        self,
        client: DiscordClient,
        msg: MatrixMessage,
        mxc: str,
        name: str,
        caption: str,
        size: int | None,
    ) -> MessageResult:
        """A file too large for Discord: a link to it (the runtime's signed media link)."""
        url = await self.connector.bridge.media_url(mxc, name)
        shown = f" ({human_size(size)})" if size else ""
        line = f"📎 {escape_markdown(name)}{shown}: {url}"
        text = f"{caption}\n{line}" if caption else line
        sent = await self.deliver(client, msg, text)
        return MessageResult(remote_id=RemoteMessageID(str(sent.id)))

    def caption(self, client: DiscordClient, msg: MatrixMessage, raw: dict[str, Any]) -> str:
        """The file's caption: its body when a separate file name is given and differs."""
        filename = raw.get("filename")
        body = msg.content.body
        if isinstance(filename, str) and filename and body and body != filename:
            return self.connector.outbound.text_of(client, msg)
        return ""

    async def deliver(
        self, client: DiscordClient, msg: MatrixMessage, text: str, **send: Any
    ) -> Any:
        """Send ``text`` (and a file) as the relayed sender through the webhook, as the bot
        with the sender's name where webhooks are not permitted, or as the login's account."""
        outbound = self.connector.outbound
        channel_id = int(msg.portal.id)
        thread_id = int(msg.content.thread_root) if msg.content.thread_root else None
        sender = msg.relay_sender
        if sender is not None:
            try:
                return await outbound.via_webhook(
                    client, channel_id, thread_id, msg, content=text or None, **send
                )
            except WebhooksForbidden:
                who = f"**{escape_markdown(sender.displayname or 'someone')}**"
                text = f"{who}: {text}" if text else f"{who} sent a file"
        return await outbound.as_user(
            client, thread_id or channel_id, msg, content=text or None, **send
        )
