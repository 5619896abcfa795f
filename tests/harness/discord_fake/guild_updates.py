"""A guild's own changes as Discord dispatches them: GUILD_UPDATE (name, icon) to the
sessions of its members, with the guild object as ``GET /guilds/{id}`` shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .workspace import cid

if TYPE_CHECKING:
    from .server import FakeDiscord

_UNSET: Any = object()


async def update_guild(
    fake: FakeDiscord, guild: Any, *, name: Any = _UNSET, icon: Any = _UNSET
) -> None:
    """The guild's owner renames it or gives it another icon (an image hash registered with
    ``fake.add_image``, or None)."""
    g = fake.guilds[cid(guild)]
    if name is not _UNSET:
        g.name = name
    if icon is not _UNSET:
        g.icon = icon
    fake.dispatch_guild(g.id, "GUILD_UPDATE", fake.guild_json(g))
