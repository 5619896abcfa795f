"""Files both ways.

Slack -> Matrix: a message with files (``file_share``) becomes one remote message in parts:
its text first (part ""), then one part per file (``file:<F id>``; a message with no text
starts with its first file). ``url_private`` needs the token, so the connector downloads it
(through the runtime's guarded fetcher, only from the allowed hosts, no redirects, capped at
``max_file_size``) and uploads the bytes; a file that cannot be copied (too large, refused,
gone) becomes a line saying so with its Slack link, never a failed message.

Matrix -> Slack: a Matrix file goes up with files upload v2 (``files.getUploadURLExternal``,
the bytes to the upload URL, ``files.completeUploadExternal`` with the channel, thread and a
caption). The three calls are made one by one rather than through the SDK's
``files_upload_v2`` because the file id must be known before the share is completed: Slack's
``file_share`` echo can arrive before ``completeUploadExternal`` answers, and it is recognised
by that id (:attr:`SlackFiles.pending`), dropped, and its ``ts`` becomes the Matrix event's
remote id.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bridgekit.contract.capabilities import SendRefused
from bridgekit.contract.connector import MediaError
from bridgekit.contract.events import (
    MatrixMessage,
    MessageContent,
    MessagePart,
    RemoteMessageID,
)
from bridgekit.contract.file_checks import (
    allowed_file_url,
    allowed_hosts,
    clean_mime,
    clean_name,
    human_size,
    media_kind,
)
from bridgekit.contract.results import MessageResult

from . import config as cfg
from .api import api_url
from .ids import file_part, is_slack_id

if TYPE_CHECKING:
    from .client import SlackClient
    from .connector import SlackConnector

log = logging.getLogger("bridgekit.slack.files")

MEDIA_MSGTYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})
#: Files per Slack message copied to Matrix (Slack allows 10 per message).
MAX_FILES = 10
#: Seconds an upload waits for its ``file_share`` echo to learn the message ``ts``.
ECHO_WAIT = 15.0
#: File ids of our own uploads remembered, so a late echo is still recognised.
RECENT_UPLOADS = 1000


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackFiles:
    def __init__(self, connector: SlackConnector) -> None:
        self.connector = connector
        config = connector.config
        self.max_size = int(cfg.setting(config, "max_file_size"))
        self.hosts = allowed_hosts(api_url(config), cfg.setting(config, "file_hosts"))
        #: Uploads between getUploadURLExternal and their echo: file id -> the echo's ts.
        self.pending: dict[str, asyncio.Future[str]] = {}
        #: File ids of our uploads -> the channel they were shared to (late echoes).
        self._recent: OrderedDict[str, str] = OrderedDict()

    def register(self) -> None:
        self.connector.inbound.on_subtype("file_share", self.file_share)

    # -- Slack -> Matrix ---------------------------------------------------------------------

    def _own_upload(self, event: dict[str, Any]) -> bool:
        """An echo of a file this bridge uploaded (the file id, in the channel it was shared
        to): resolves the waiting upload with its ts."""
        files = event.get("files")
        ids = [str(f.get("id") or "") for f in files if isinstance(f, dict)] if files else []
        channel = str(event.get("channel") or "")
        ours = [i for i in ids if self._recent.get(i) == channel]
        if not ours:
            return False
        for fid in ours:
            fut = self.pending.get(fid)
            if fut is not None and not fut.done():
                fut.set_result(str(event.get("ts") or ""))
        return True

    async def file_share(
        self, client: SlackClient, event: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        """A message with files: our own upload's echo is dropped, the rest is a message
        like any other (:meth:`Inbound.to_message` makes the files its parts)."""
        if self._own_upload(event):
            return
        await self.connector.inbound.message(client, event)

    async def parts(
        self, client: SlackClient, event: dict[str, Any], text: MessageContent
    ) -> list[MessagePart]:
        """A Slack message with files as message parts: ``text`` (when there is any), then
        one part per file, each in the text's thread. For every handler of messages that can
        carry files (``file_share``, a thread broadcast with files)."""
        parts: list[MessagePart] = []
        if text.body.strip():
            parts.append(MessagePart("", text))
        files = event.get("files")
        for f in files[:MAX_FILES] if isinstance(files, list) else []:
            if not isinstance(f, dict):
                continue
            content = await self.file_content(client, f)
            content.thread_root = text.thread_root
            content.reply_to = text.reply_to
            fid = str(f.get("id") or "")
            parts.append(MessagePart(file_part(fid) if is_slack_id(fid) else "", content))
        if not parts:
            parts.append(MessagePart("", text))
        return parts

    async def file_content(self, client: SlackClient, f: dict[str, Any]) -> MessageContent:
        """One Slack file as Matrix content: the file itself, or a line saying why not."""
        name = clean_name(f.get("name") or f.get("title"))
        link = f.get("permalink")
        link = link if isinstance(link, str) and link.startswith(("https://", "http://")) else ""

        def instead(why: str) -> MessageContent:
            text = f"📎 {name}: {why}" + (f" ({link})" if link else "")
            return MessageContent(text, msgtype="m.notice")

        if f.get("mode") in ("tombstone", "hidden_by_limit"):
            return instead("the file is no longer available on Slack")
        size = f.get("size")
        if isinstance(size, int) and size > self.max_size:
            return instead(f"too large to bridge ({human_size(size)})")
        url = f.get("url_private_download") or f.get("url_private")
        if not url:
            return instead("not a file Slack lets the bridge download")
        if not allowed_file_url(url, self.hosts):
            log.warning("Not downloading file %s: its link is not on an allowed host", f.get("id"))
            return instead("its link is not on a Slack file host, so it was not downloaded")
        try:
            data, got = await self.connector.bridge.fetch_media(
                str(url),
                headers={"Authorization": f"Bearer {client.meta.token}"},
                max_size=self.max_size,
                follow_redirects=False,
            )
        except MediaError as e:
            if e.too_large:
                return instead("too large to bridge")
            log.info("Could not download Slack file %s: %s", f.get("id"), e)
            return instead(f"could not be downloaded ({e})")
        if got == "text/html" and clean_mime(f.get("mimetype")) != "application/octet-stream":
            # Slack's sign-in page instead of the file: the token may not read files.
            log.warning("Slack answered file %s with a web page (files:read scope?)", f.get("id"))
            return instead("Slack did not hand the file to the bridge")
        msgtype, mime = media_kind(f.get("mimetype"), data)
        mxc = await self.connector.bridge.upload_media(data, mime, name)
        info: dict[str, Any] = {"mimetype": mime, "size": len(data)}
        if msgtype in ("m.image", "m.video"):
            for key, slack_key in (("w", "original_w"), ("h", "original_h")):
                value = f.get(slack_key)
                if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 20:
                    info[key] = value
        content = MessageContent(name, msgtype=msgtype, media_url=mxc, media_info=info)
        return content

    # -- Matrix -> Slack ---------------------------------------------------------------------

    @staticmethod
    def is_file(msg: MatrixMessage) -> bool:
        return msg.content.msgtype in MEDIA_MSGTYPES and bool(msg.content.media_url)

    def _remember_upload(self, fid: str, channel: str) -> None:
        self._recent[fid] = channel
        while len(self._recent) > RECENT_UPLOADS:
            self._recent.popitem(last=False)

    async def send(self, client: SlackClient, msg: MatrixMessage) -> MessageResult:
        """A Matrix file to Slack (upload v2); the result maps the message's ts."""
        outbound = self.connector.outbound
        channel = outbound.channel_of(client, msg)
        content = msg.content
        raw = msg.raw if isinstance(msg.raw, dict) else {}  # the Matrix event's content
        name = clean_name(raw.get("filename") or content.body)
        limit = human_size(self.max_size)
        declared = content.media_info.get("size")
        if isinstance(declared, int) and declared > self.max_size:
            raise SendRefused(f"the file is larger than the bridge's limit of {limit}")
        try:
            data, _ = await self.connector.bridge.download_media(
                str(content.media_url), self.max_size
            )
        except MediaError as e:
            if e.too_large:
                raise SendRefused(f"the file is larger than the bridge's limit of {limit}") from e
            raise SendRefused(f"the file could not be read: {e}", retriable=True) from e
        if not data:
            raise SendRefused("the file is empty")
        args: dict[str, Any] = {"channel_id": channel}
        comment = self.comment(client, msg, raw, name)
        if comment:
            args["initial_comment"] = comment
        if content.thread_root:
            args["thread_ts"] = str(content.thread_root)
        up = await client.call("files.getUploadURLExternal", filename=name, length=len(data))
        fid, upload_url = str(up.get("file_id") or ""), str(up.get("upload_url") or "")
        if not fid or not upload_url:
            raise SendRefused("Slack gave no upload address", retriable=True)
        echo: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending[fid] = echo
        self._remember_upload(fid, channel)
        try:
            web = client.web
            result = await web._upload_file(
                url=upload_url,
                data=data,
                logger=log,
                timeout=web.timeout,
                proxy=web.proxy,
                ssl=web.ssl,
            )
            if result.status != 200:
                raise SendRefused(f"Slack refused the file ({result.status})", retriable=True)
            await client.call(
                "files.completeUploadExternal",
                files=[{"id": fid, "title": name}],
                **args,
            )
            try:
                ts = await asyncio.wait_for(asyncio.shield(echo), ECHO_WAIT)
            except TimeoutError:
                log.info("No echo of uploaded file %s: its message is not mapped", fid)
                ts = ""
        finally:
            self.pending.pop(fid, None)
        return MessageResult(remote_id=RemoteMessageID(ts) if ts else None)

    def comment(
        self, client: SlackClient, msg: MatrixMessage, raw: dict[str, Any], name: str
    ) -> str:
        """The message beside the file: its caption (a body that is not the file name), and
        for a relayed sender who sent it (a file carries no ``username`` of its own)."""
        content = msg.content
        caption = ""
        filename = raw.get("filename")
        if isinstance(filename, str) and filename and content.body and content.body != filename:
            caption = self.connector.outbound.text_of(client, msg)
        sender = msg.relay_sender
        if sender is None:
            return caption
        who = _mrkdwn_escape(sender.displayname or "someone")
        return f"*{who}*: {caption}" if caption else f"*{who}* sent a file"
