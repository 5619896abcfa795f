"""The REST v10 routes (except webhooks): users, applications, gateway, guilds, members,
roles, channels, messages (history paging as Discord does it, newest first), reactions,
typing, threads, DMs. Permission checks answer 403 with Discord's codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .app_flags import application_flags
from .models import (
    MANAGE_CHANNELS,
    VIEW_CHANNEL,
    ApiError,
    Channel,
    Message,
    User,
)

if TYPE_CHECKING:
    from .server import Call, FakeDiscord


def _err(status: int, code: int, message: str, errors: Any = None) -> Exception:
    return ApiError(status, code, message, errors)


def _too_long(field: str, limit: int) -> Exception:
    return _err(
        400,
        50035,
        "Invalid Form Body",
        {
            field: {
                "_errors": [
                    {
                        "code": "BASE_TYPE_MAX_LENGTH",
                        "message": f"Must be {limit} or fewer in length.",
                    }
                ]
            }
        },
    )


class RestRoutes:
    """Route handlers (``self`` is the ``FakeDiscord``)."""

    def _add_rest_routes(self: FakeDiscord) -> None:
        r = self.route
        r("GET", "/gateway", self._get_gateway, auth=False)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        r("GET", "/users/@me", self._get_me)
        r("GET", "/users/@me/guilds", self._get_my_guilds)
        r("GET", "/users/{user_id}", self._get_user)
        r("POST", "/users/@me/channels", self._open_dm)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/@me", self._get_application)
        r("GET", "/guilds/{guild_id}", self._get_guild)
        r("GET", "/guilds/{guild_id}/channels", self._get_guild_channels)
        r("GET", "/guilds/{guild_id}/members", self._get_members)
        r("GET", "/guilds/{guild_id}/members/search", self._search_members)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member)
        r("GET", "/guilds/{guild_id}/roles", self._get_roles)
        r("GET", "/guilds/{guild_id}/threads/active", self._get_active_threads)
        r("GET", "/channels/{channel_id}", self._get_channel)
        r("PATCH", "/channels/{channel_id}", self._patch_channel)

    # --- helpers -----------------------------------------------------------------------------

    def _chan(self: FakeDiscord, call: Call, need: int = VIEW_CHANNEL) -> Channel:
        channel = self.channels.get(call.params["channel_id"])
        if channel is None:
            raise _err(404, 10003, "Unknown Channel")
        perms = self.permissions(call.me, channel)
        if not perms & VIEW_CHANNEL:
            raise _err(403, 50001, "Missing Access")
        if perms & need != need:
            raise _err(403, 50013, "Missing Permissions")
        return channel

    def _msg(self: FakeDiscord, channel: Channel, message_id: str) -> Message:
        for msg in self.message_store.get(channel.id, []):
            if msg.id == message_id:
                return msg
        raise _err(404, 10008, "Unknown Message")

    def _guild_of(self: FakeDiscord, call: Call) -> Any:
        guild = self.guilds.get(call.params["guild_id"])
        if guild is None or call.me.id not in guild.members:
            raise _err(
                404 if guild is None else 403,
                10004 if guild is None else 50001,
                "Unknown Guild" if guild is None else "Missing Access",
            )
        return guild

    # --- users, application, gateway ---------------------------------------------------------

    async def _get_gateway(self: FakeDiscord, call: Call) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self: FakeDiscord, call: Call) -> Any:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.identify_count,
                "reset_after": 86400000,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self: FakeDiscord, call: Call) -> Any:
        return self.user_json(call.me) | {
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
        }

    async def _get_my_guilds(self: FakeDiscord, call: Call) -> Any:
        return [
            {
                "id": g.id,
                "name": g.name,
                "icon": g.icon,
                "owner": g.owner_id == call.me.id,
                "permissions": "0",
                "features": [],
            }
            for g in self.guilds.values()
            if call.me.id in g.members
        ]

    async def _get_user(self: FakeDiscord, call: Call) -> Any:
        user = self.users.get(call.params["user_id"])
        if user is None:
            raise _err(404, 10013, "Unknown User")
        return self.user_json(user)

    async def _open_dm(self: FakeDiscord, call: Call) -> Any:
        other = self.users.get(str((call.body or {}).get("recipient_id")))
        if other is None:
            raise _err(400, 50035, "Invalid Form Body")
        return self.channel_json(self.add_dm(call.me, other), viewer=call.me.id)

    async def _get_application(self: FakeDiscord, call: Call) -> Any:
        me = call.me
        if not me.bot:
            raise _err(401, 0, "401: Unauthorized")
        owner = next(
            (self.users[g.owner_id] for g in self.guilds.values() if me.id in g.members), me
        )
        return {
            "id": me.application_id,
            "name": me.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": application_flags(me),
            "owner": self.user_json(owner),
            "team": None,
            "bot": self.user_json(me),
            "approximate_guild_count": sum(1 for g in self.guilds.values() if me.id in g.members),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
        }

    # --- guilds ------------------------------------------------------------------------------

    async def _get_guild(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        data = self.guild_json(guild)
        if call.query.get("with_counts") == "true":
            data["approximate_presence_count"] = 0
        return data

    async def _get_guild_channels(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        return [
            self.channel_json(self.channels[c])
            for c in guild.channels
            if not self.channels[c].is_thread and self.can_view(call.me, self.channels[c])
        ]

    def _members_allowed(self: FakeDiscord, user: User) -> None:
        if user.bot and not user.privileged_intents:
            raise _err(403, 50001, "Missing Access")

    async def _get_members(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        self._members_allowed(call.me)
        limit = max(1, min(1000, int(call.query.get("limit", "1"))))
        after = int(call.query.get("after", "0"))
        members = sorted(
            (m for m in guild.members.values() if int(m.user_id) > after),
            key=lambda m: int(m.user_id),
        )
        return [self.member_json(m) for m in members[:limit]]

    async def _search_members(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        query = call.query.get("query", "").lower()
        limit = max(1, min(1000, int(call.query.get("limit", "1"))))
        found = [
            m
            for m in guild.members.values()
            if self.users[m.user_id].username.lower().startswith(query)
            or (m.nick or "").lower().startswith(query)
        ]
        return [self.member_json(m) for m in found[:limit]]

    async def _get_member(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        member = guild.members.get(call.params["user_id"])
        if member is None:
            raise _err(404, 10007, "Unknown Member")
        return self.member_json(member)

    async def _get_roles(self: FakeDiscord, call: Call) -> Any:
        return [self.role_json(r) for r in self._guild_of(call).roles.values()]

    async def _get_active_threads(self: FakeDiscord, call: Call) -> Any:
        guild = self._guild_of(call)
        threads = [
            self.channels[c]
            for c in guild.channels
            if self.channels[c].is_thread
            and not self.channels[c].archived
            and self.can_view(call.me, self.channels[c])
        ]
        return {"threads": [self.channel_json(t) for t in threads], "members": []}

    # --- channels ----------------------------------------------------------------------------

    async def _get_channel(self: FakeDiscord, call: Call) -> Any:
        return self.channel_json(self._chan(call), viewer=call.me.id)

    async def _patch_channel(self: FakeDiscord, call: Call) -> Any:
        channel = self._chan(call)
        body = call.body or {}
        is_owner = channel.is_thread and channel.owner_id == call.me.id
        if not is_owner and not self.permissions(call.me, channel) & MANAGE_CHANNELS:
            raise _err(403, 50013, "Missing Permissions")
        if "name" in body and len(body["name"] or "") > 100:
            raise _too_long("name", 100)
        if "topic" in body and len(body["topic"] or "") > 1024:
            raise _too_long("topic", 1024)
        self.change_channel(channel, body)
        return self.channel_json(channel)
