"""Discord users as ghosts: their names and avatars."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bridgekit.contract.events import RemoteUserID, UserInfo

if TYPE_CHECKING:
    from .client import DiscordClient
    from .connector import DiscordConnector


def user_info_of(user: discord.abc.User) -> UserInfo:
    avatar = user.display_avatar
    return UserInfo(
        name=user.global_name or user.name,
        avatar_url=str(avatar.url) if user.avatar is not None else None,
        is_bot=user.bot,
    )


class Users:
    def __init__(self, connector: DiscordConnector) -> None:
        self.connector = connector

    async def user_info(self, client: DiscordClient, rid: RemoteUserID) -> UserInfo | None:
        gateway = client.gateway
        if gateway is None or not rid.isdigit():
            return None
        user = gateway.get_user(int(rid))
        if user is None:
            try:
                user = await gateway.fetch_user(int(rid))
            except discord.NotFound:
                return None
        info = user_info_of(user)
        info.avatar_url = self.connector.media.allowed_or_none(info.avatar_url)
        return info
