"""Edge cases of Discord embeds as Matrix text (bridges/discord/embeds.py) and of the media
host allow-list (bridges/discord/media.py); the end-to-end behaviour is in
test_e2e_embeds.py and test_e2e_attachments.py."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from bridges.discord.embeds import embed_content, embed_image_url, is_link_preview
from bridges.discord.media import DiscordMedia

pytestmark = pytest.mark.engine_independent


def embed(**data: object) -> discord.Embed:
    return discord.Embed.from_dict({"type": "rich", **data})


def test_markup_and_script_links_in_an_embed_are_escaped_and_dropped() -> None:
    content = embed_content(
        embed(
            title="<img src=x onerror=alert(1)>",
            url="javascript:alert(1)",
            description="<b>not bold</b>",
            fields=[{"name": "<i>n</i>", "value": "v"}],
            footer={"text": "<script>"},
            author={"name": "A", "url": "data:text/html,x"},
        ),
        image_link=None,
    )
    assert content is not None and content.html is not None
    assert "<img" not in content.html and "<script>" not in content.html
    assert "<b>" not in content.html and "<i>" not in content.html
    assert "javascript:" not in content.html and "data:" not in content.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in content.html


def test_an_empty_embed_says_nothing() -> None:
    assert embed_content(embed(), image_link=None) is None
    assert embed_content(embed(fields=[{"name": "", "value": ""}]), image_link=None) is None


def test_an_image_only_embed_is_its_image() -> None:
    only = embed(image={"url": "https://example.com/a.png"})
    assert embed_content(only, image_link=None) is None
    assert embed_image_url(only) == "https://example.com/a.png"
    proxied = embed(
        image={"url": "https://example.com/a.png", "proxy_url": "https://media.x/a.png"}
    )
    assert embed_image_url(proxied) == "https://media.x/a.png"
    assert embed_image_url(embed(image={"url": "ftp://example.com/a.png"})) is None


def test_only_previews_of_a_url_in_the_text_are_previews() -> None:
    url = "https://example.com/p"
    assert is_link_preview(discord.Embed.from_dict({"type": "link", "url": url}), f"see {url}")
    assert is_link_preview(discord.Embed.from_dict({"type": "gifv", "url": url}), url)
    # a preview type whose URL is not in the text, a rich embed with a URL: shown
    assert not is_link_preview(discord.Embed.from_dict({"type": "article", "url": url}), "hi")
    assert not is_link_preview(embed(url=url, title="t"), f"see {url}")
    # Discord's normalised URL (a slash added, a redirect followed) is still a preview
    assert is_link_preview(discord.Embed.from_dict({"type": "link", "url": url + "/"}), url)
    moved = discord.Embed.from_dict({"type": "article", "url": "https://example.com/new"})
    assert is_link_preview(moved, "see http://example.com/old")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1", True),
        ("https://media.discordapp.net/stickers/1.png", True),
        ("https://discord.com/api/v10/x", True),  # the api_url's host
        ("http://cdn.discordapp.com/a.png", False),  # port 80: not the https host
        ("https://cdn.discordapp.com:8443/a.png", False),
        ("https://evil@cdn.discordapp.com/a.png", False),
        ("https://cdn.discordapp.com.evil.example/a.png", False),
        ("file:///etc/passwd", False),
        ("https://[::1/a.png", False),
        (None, False),
    ],
)
def test_only_the_allowed_media_hosts_are_downloaded_from(url: object, allowed: bool) -> None:
    media = DiscordMedia(SimpleNamespace(config={}))  # type: ignore[arg-type]
    assert media.allowed(url) is allowed
