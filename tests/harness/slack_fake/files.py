"""Files on the fake: upload v2 (``files.getUploadURLExternal``, the upload URL,
``files.completeUploadExternal``), ``files.info``, ``url_private`` downloads (a sign-in page
without a token of the file's team), avatars and custom emoji images."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from typing import Any

from aiohttp import web

from .models import (
    FileObj,
    Message,
    Recorded,
    Token,
    User,
    _ApiError,
)
from .wire import _PNG, _guess_mimetype


class FileEndpoints:
    """The ``files.*`` methods and the HTTP endpoints serving file and image bytes."""

    def _get_upload_url(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        if not filename:
            raise _ApiError("invalid_arguments")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if length <= 0:
            raise _ApiError("invalid_arguments")
        f = FileObj(
            self._id("F"),
            token.team_id,
            token.user_id,
            filename,
            filename,
            _guess_mimetype(filename),
            None,
            length,
            int(time.time()),
        )
        self.files[f.id] = f
        ticket = secrets.token_urlsafe(16)
        self._uploads[ticket] = f.id
        return {"upload_url": f"{self.url}/upload/v1/{ticket}", "file_id": f.id}

    def _complete_upload(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("files")
        try:
            items = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise _ApiError("invalid_arguments")
        files: list[FileObj] = []
        for item in items:
            f = self.files.get(str(item.get("id", "")))
            if f is None or f.team_id != token.team_id or f.data is None:
                raise _ApiError("file_not_found")
            if item.get("title"):
                f.title = str(item["title"])
            files.append(f)
        channel = params.get("channel_id") or params.get("channels")
        if channel:
            conv = self._conv_for(token, {"channel": str(channel).split(",")[0]})
            self._require_member(token, conv)
            thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
            msg = Message(
                conv.id,
                self.new_ts(),
                str(params.get("initial_comment") or ""),
                user=token.user_id,
                thread_ts=thread_ts,
                subtype="file_share",
                files=[f.id for f in files],
            )
            if thread_ts is not None:
                parent = self._find_message(conv.id, thread_ts)
                parent.thread_ts = parent.thread_ts or parent.ts
            self._store(msg)
            self._emit_message(msg)
        return {"files": [{"id": f.id, "title": f.title} for f in files]}

    def _files_info(self, token: Token, params: dict[str, Any]) -> dict[str, Any]:
        f = self.files.get(str(params.get("file") or ""))
        if f is None or f.team_id != token.team_id or f.data is None:
            raise _ApiError("file_not_found")
        return {"file": self.file_json(f)}

    # --- uploads, downloads, images ----------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        rec = Recorded("upload", request.path, {}, self._bearer(request), time.time())
        self.requests.append(rec)
        fid = self._uploads.pop(ticket, None)
        if fid is None:
            rec.status = 404
            self._notify()
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if hasattr(part, "file") else str(part or "").encode()
        else:
            data = await request.read()
        f = self.files[fid]
        f.data = data
        f.length = len(data)
        rec.status = 200
        self._notify()
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        tf = request.match_info["tf"]
        token_value = self._bearer(request)
        rec = Recorded("download", request.path, {}, token_value, time.time())
        self.requests.append(rec)
        faults = self._faults.get("download")  # delay("download", s): a slow file host
        while faults and faults[0].kind == "delay":
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.popleft()
            await asyncio.sleep(fault.seconds)
        team_id, _, fid = tf.partition("-")
        f = self.files.get(fid)
        token = self.tokens.get(token_value or "")
        if f is None or f.data is None or f.team_id != team_id:
            rec.status = 404
            self._notify()
            return web.Response(status=404, text="Not Found")
        if token is None or token.revoked or token.team_id != team_id:
            rec.status = 302
            self._notify()
            raise web.HTTPFound(f"/signin?redir={request.path}")
        rec.status = 200
        self._notify()
        return web.Response(body=f.data, content_type=f.mimetype)

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        html = (
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def _avatar(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(request.match_info["user"])
        if user is None or request.match_info["hash"] != user.avatar_hash:
            return web.Response(status=404)
        self.requests.append(Recorded("image", request.path, {}, None, time.time(), 200))
        return web.Response(body=user.avatar or _PNG, content_type="image/png")

    async def _emoji_image(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.match_info['team']}/{request.match_info['name']}"
        data = self.emoji_images.get(key)
        if data is None:
            return web.Response(status=404)
        self.requests.append(Recorded("image", request.path, {}, None, time.time(), 200))
        return web.Response(body=data, content_type="image/png")

    async def _team_icon(self, request: web.Request) -> web.StreamResponse:
        team = self.teams.get(request.match_info["team"])
        if team is None or request.match_info["hash"] != team.icon_hash:
            return web.Response(status=404)
        self.requests.append(Recorded("image", request.path, {}, None, time.time(), 200))
        return web.Response(body=team.icon or _PNG, content_type="image/png")

    def set_team_icon(self, team_id: str, data: bytes) -> None:
        """A custom workspace icon (new image URLs); b"" goes back to Slack's default."""
        team = self.teams[team_id]
        team.icon = data
        team.icon_hash = hashlib.sha1(data).hexdigest()[:12] if data else "0"

    def _set_avatar(self, user: User, data: bytes) -> None:
        user.avatar = data
        user.avatar_hash = hashlib.sha1(data or user.id.encode()).hexdigest()[:12]
