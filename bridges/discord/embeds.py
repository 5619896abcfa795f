"""Discord embeds as Matrix text: a pure function of the embed.

A rich embed (what bots and webhooks post) becomes a block quote: the author, the title
linked to its ``url``, the description (Discord markdown, through :mod:`.markdown`), the
fields (name in bold, value as markdown), the footer in small print. Its image (or
thumbnail) is a part of its own when the bridge may download it (:mod:`.media`), else a
link at the end of the text.

The embeds Discord itself adds under a message that holds a URL (``link``, ``article``,
``video``, ``gifv``, ``image`` previews of that URL) are not bridged: the text has the URL
and Matrix clients make their own previews. Discord adds them after the message, by a
MESSAGE_UPDATE whose content is unchanged, which is not an edit either (only content
changes are edits).
"""

from __future__ import annotations

import html
from typing import Any

import discord

from bridgekit.contract.events import MessageContent

from .markdown import discord_to_matrix

#: Embed types that are Discord's previews of a URL.
PREVIEW_TYPES = frozenset({"link", "article", "video", "gifv", "image"})


def is_link_preview(embed: discord.Embed, text: str) -> bool:
    """Whether ``embed`` is Discord's preview of a URL written in the message's ``text``.

    Only Discord makes embeds of these types (a bot or webhook posts ``rich`` ones), from
    the links in the text, and the URL it gives may be normalised (a trailing slash added,
    a redirect followed): a link in the text is enough."""
    body = text or ""
    url = str(embed.url or "")
    return embed.type in PREVIEW_TYPES and (
        (bool(url) and url.rstrip("/") in body) or "https://" in body or "http://" in body
    )


def _web_link(url: object) -> str | None:
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def embed_image_url(embed: discord.Embed) -> str | None:
    """The embed's picture to copy: its image, else its thumbnail (Discord's proxied copy
    when it has one, which is on its media host)."""
    for media in (embed.image, embed.thumbnail):
        url = _web_link(getattr(media, "proxy_url", None)) or _web_link(media.url)
        if url:
            return url
    return None


def _markdown(text: str) -> tuple[str, str]:
    """(plain, html) of a piece of Discord markdown."""
    converted = discord_to_matrix(text)
    return converted.body, converted.html or html.escape(converted.body).replace("\n", "<br>")


def _link(label_html: str, url: object) -> str:
    href = _web_link(url)
    if href is None:
        return label_html
    return f'<a href="{html.escape(href, quote=True)}">{label_html}</a>'


def embed_content(embed: discord.Embed, *, image_link: str | None) -> MessageContent | None:
    """A rich embed as Matrix text (None when it has nothing to show); ``image_link`` is
    its picture's URL when the picture is not copied (it is then shown as a link)."""
    plain: list[str] = []
    rich: list[str] = []
    author = embed.author.name
    if author:
        plain.append(author)
        rich.append(f"<p>{_link(html.escape(author), embed.author.url)}</p>")
    if embed.title:
        title = html.escape(embed.title)
        url = _web_link(embed.url)
        plain.append(f"{embed.title} ({url})" if url else embed.title)
        rich.append(f"<p><strong>{_link(title, url)}</strong></p>")
    if embed.description:
        body, desc_html = _markdown(embed.description)
        plain.append(body)
        rich.append(f"<p>{desc_html}</p>")
    for embed_field in embed.fields:
        name: Any = embed_field.name
        value: Any = embed_field.value
        if not name and not value:
            continue
        body, value_html = _markdown(str(value or ""))
        plain.append(f"{name}: {body}" if name else body)
        rich.append(f"<p><strong>{html.escape(str(name or ''))}</strong><br>{value_html}</p>")
    if image_link:
        plain.append(image_link)
        rich.append(f"<p>{_link(html.escape(image_link), image_link)}</p>")
    footer = embed.footer.text
    if footer:
        plain.append(footer)
        rich.append(f"<p><sub>{html.escape(footer)}</sub></p>")
    if not plain:
        return None
    return MessageContent(
        "\n".join(f"> {line}" for text in plain for line in text.split("\n")),
        html="<blockquote>" + "".join(rich) + "</blockquote>",
    )
