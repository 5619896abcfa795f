"""Matrix ``org.matrix.custom.html`` (or a plain body) -> Discord markdown: a pure function.

:func:`matrix_to_discord` is what outbound code calls; it returns the text and who may be
pinged (:meth:`DiscordText.allowed_mentions` builds discord.py's ``AllowedMentions``), and
:func:`split_message` cuts a long text to Discord's 2000 characters.

======================================  ======================================================
Matrix                                  Discord
======================================  ======================================================
text                                    backslash before ``\\ * _ ~ | ` < [``; before ``# > -
                                        +`` and ``1.``'s dot at a line's start: nothing typed
                                        on Matrix becomes formatting, a mention, an emoji or
                                        a timestamp. A URL run (Discord's autolink rule) is
                                        left whole; a "<" right after one is "<" + U+200B
                                        (the URL would take a backslash in)
typed ``<@id>`` ``<@&id>``              also a zero-width space after ``@`` (Discord pings
                                        for an escaped mention); code too
``@room``                               ``@everyone`` when ``may_mention_room``, else as is
``@everyone`` ``@here``                 kept when ``may_mention_room``, else ``@\\u200beveryone``
user pill (matrix.to / ``matrix:u/``)   ``<@id>`` via ``names.ghost_user_id``, else its label
room pill                               ``<#id>`` via ``names.channel_id``, else its label
``b/strong`` ``i/em`` ``u``             ``**b**`` ``*i*`` ``__u__`` ``~~s~~`` (spaces outside,
``del/s/strike``                        empty ones dropped, no marker inside the same marker)
``span data-mx-spoiler``                ``||text||``
``code``                                `` `c` `` (````` `` c `` ````` if it holds a backtick)
``pre`` (``code class=language-x``)     ```` ```x ```` block on its own lines
``blockquote``                          ``> `` lines (Discord has one quote level)
``ul``/``ol``/``li``                    ``- `` / ``1. ``, two spaces a level
``h1``-``h3``; ``h4``-``h6``            ``#``-``###`` lines; bold lines
``a href`` http(s)                      ``[text](url)``, or the url when the text is the url
``a href`` other schemes                the text only
``img data-mx-emoticon``                ``<:name:id>`` via ``names.custom_emoji``, else its alt
``br`` ``p`` ``div`` ``tr``             newlines (a blank line between paragraphs)
``mx-reply`` ``script`` ``style``       dropped with their content
markup html.parser gives up on          the body (else the markup's text) as plain text
======================================  ======================================================

``user_ids``/``everyone`` of the result are what may ping: outbound sends them as
``allowed_mentions`` (the text is neutralised as well, belt and braces).
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from .markdown_inline import URL_RE
from .message_split import split_message

if TYPE_CHECKING:
    import discord

__all__ = ["DiscordText", "MatrixNames", "escape_text", "matrix_to_discord", "split_message"]


class MatrixNames(Protocol):
    """What the Matrix -> Discord converter asks about pills and emoticons."""

    def ghost_user_id(self, mxid: str) -> str | None:
        """The Discord user id behind a ghost (or a puppeted Matrix user), else None."""
        ...

    def channel_id(self, room: str) -> str | None:
        """The Discord channel id of a portal (room id or alias), else None."""
        ...

    def custom_emoji(self, mxc: str) -> tuple[str, str, bool] | None:
        """``(name, id, animated)`` of the Discord emoji an mxc came from, else None."""
        ...


@dataclass
class DiscordText:
    """The converted text and who it may ping: users by id, and ``@everyone``/``@here``."""

    text: str
    user_ids: set[str] = field(default_factory=set)
    everyone: bool = False

    def allowed_mentions(self, *, replied_user: bool = False) -> discord.AllowedMentions:
        """discord.py's ``AllowedMentions`` for exactly what this text may ping."""
        import discord

        return discord.AllowedMentions(
            everyone=self.everyone,
            users=[discord.Object(id=int(user)) for user in sorted(self.user_ids)],
            roles=False,
            replied_user=replied_user,
        )


# Placeholders, resolved at the end (control characters: never in converted text).
_BREAK, _PARA, _AT, _MAYBE, _LT = "\x01", "\x02", "\x03", "\x04", "\x05"
_ZWSP = "\u200b"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HTML_SPACE_RE = re.compile(r"[ \t\n\r\f]+")
# Discord's autolink rule (markdown_inline.URL_RE) and the punctuation after it, to the next
# space or "<": a link there, nothing in it formatting, so it is left as it is.
_URL_RE = re.compile(URL_RE.pattern + r"[^\s<]*")
_INLINE_ESCAPE_RE = re.compile(r"[\\*_~|`<\[]")
_LINE_START_RE = re.compile(r"^([ \t]*)(?:([#>\-+])|([0-9]+)\.)", re.MULTILINE)
_ROOM_WORD_RE = re.compile(r"(?<![\w@])@(room|everyone|here)\b", re.IGNORECASE)
# Whatever is left after conversion (``@`` and ``everyone`` from two text nodes, ``@heres``):
# every such ``@`` gets a zero-width space, whatever follows.
_LEFTOVER_RE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
# A placeholder at a line's start (after the quote and list prefixes the converter wrote)
# becomes a backslash; anywhere else it goes.
_MAYBE_RE = re.compile(r"^((?:> |[ \t]*(?:- |[0-9]{1,10}\. ))*[ \t]*[0-9]*)\x04", re.MULTILINE)
# A URL run, an even number of backslashes (escaped backslashes), then an escaped "<".
_URL_THEN_LT_RE = re.compile(r"((?<![A-Za-z0-9])https?://[^\s<\x05]*)\x05")
_TYPED_MENTION_RE = re.compile(r"([<\x05]@[!&]?)(?=[0-9])")  # users and roles (channels never ping)
_RUN_RE = re.compile(r"[\n\x01\x02]*[\x01\x02][\n\x01\x02]*")
_MATRIX_TO_RE = re.compile(r"https?://matrix\.to/#/([^?]+)", re.IGNORECASE)
_MATRIX_URI_RE = re.compile(r"matrix:(u|r|roomid)/([^?#/]+)(/|$|[?#])", re.IGNORECASE)
_MXID_RE = re.compile(r"@[^:\s/]+:[^\s/]+")
#: A room alias, or a room id (room version 12 ids have no server part).
_ROOM_RE = re.compile(r"#[^:\s/]+:[^\s/]+|![^:\s/]+(?::[^\s/]+)?")
_SAFE_URL_RE = re.compile(r"https?://[^\s]+", re.IGNORECASE)
_SKIP = frozenset({"mx-reply", "script", "style", "head", "title", "template"})
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_BREAKS = frozenset("div tr li ul ol table details summary dl dt dd section article".split())
_MARKS = {"b": "**", "strong": "**", "i": "*", "em": "*", "cite": "*", "u": "__", "ins": "__"}
_MARKS |= {"del": "~~", "s": "~~", "strike": "~~"}
#: Quote and list nesting that adds prefixes; deeper nesting adds none.
_MAX_LEVELS = 16


def escape_text(text: str) -> str:
    """Backslash-escape Discord markdown in plain text (URLs kept whole, so they still link)."""
    return _settle_lt(_escape(text, "\\"))


def _escape(text: str, line_start: str) -> str:
    """:func:`escape_text` but for "<" (a placeholder) and with ``line_start`` before what
    would start a quote, heading or list at a line's start (HTML text nodes: a placeholder
    too, settled once the lines are known)."""
    out: list[str] = []
    pos = 0
    for match in _URL_RE.finditer(text):
        out.append(_INLINE_ESCAPE_RE.sub(_escape_char, text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_INLINE_ESCAPE_RE.sub(_escape_char, text[pos:]))

    def line_starts(match: re.Match[str]) -> str:
        if match.group(2):
            return match.group(1) + line_start + match.group(2)
        return match.group(1) + match.group(3) + line_start + "."

    return _LINE_START_RE.sub(line_starts, "".join(out))


def _escape_char(match: re.Match[str]) -> str:
    return _LT if match.group(0) == "<" else "\\" + match.group(0)


def _settle_lt(text: str) -> str:
    """An escaped "<" right after a URL run gets a zero-width space instead of a backslash
    (Discord's URL would take the backslash in); elsewhere a backslash. Text of several HTML
    nodes is settled again once whole (a link's URL, then a text node)."""
    text = _URL_THEN_LT_RE.sub("\\1<" + _ZWSP, text)
    return text.replace(_LT, "\\<")


def _resolve(text: str) -> str:
    """Placeholders -> newlines (a blank line where a paragraph ends), none at either end."""

    def swap(match: re.Match[str]) -> str:
        if match.start() == 0 or match.end() == len(text):
            return ""
        run = match.group(0)
        return "\n" * max(run.count("\n"), 2 if _PARA in run else 1)

    return _RUN_RE.sub(swap, text)


def _pill_target(href: str) -> str | None:
    """The user id, room alias or room id a pill links to (not an event permalink)."""
    match = _MATRIX_TO_RE.match(href)
    if match:
        target, slash, _ = unquote(match.group(1)).partition("/")
        if _MXID_RE.fullmatch(target) or (_ROOM_RE.fullmatch(target) and not slash):
            return target
        return None
    match = _MATRIX_URI_RE.match(href)
    if match and match.group(3) != "/":
        sigil = {"u": "@", "r": "#", "roomid": "!"}[match.group(1).lower()]
        target = sigil + unquote(match.group(2))
        if _MXID_RE.fullmatch(target) or _ROOM_RE.fullmatch(target):
            return target
    return None


def _wrap(marker: str, content: str) -> str:
    """``content`` inside ``marker``s, its outer spaces outside; nothing for empty content."""
    stripped = content.strip(" ")
    if not stripped.strip(_BREAK + _PARA + "\n"):
        return content
    lead = content[: len(content) - len(content.lstrip(" "))]
    trail = content[len(content.rstrip(" ")) :]
    return f"{lead}{marker}{stripped}{marker}{trail}"


def _code_span(code: str) -> str:
    code = code.replace("\n", " ")
    if not code.strip():
        return code
    if "`" not in code:
        return f"`{code}`"
    if "``" not in code:
        return f"`` {code} ``"
    return "`" + code.replace("`", "ˋ") + "`"


@dataclass
class _Frame:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)  # the anchor's text as typed
    counter: int = 0  # the next number of an <ol>
    mark: str = ""  # the marker this element writes (not when an outer one does)
    quote: bool = False
    prefixed: bool = False


class _Converter(HTMLParser):
    def __init__(self, names: MatrixNames | None, may: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.names = names
        self.may = may
        self.users: set[str] = set()
        self.stack: list[_Frame] = [_Frame("", {})]
        self.skip = 0
        self.marks: dict[str, int] = {}
        self.code = 0
        self.pre = 0
        self.quotes = 0
        self.levels = 0
        self.anchors = 0

    def mentions(self, text: str, code: bool) -> str:
        def swap(match: re.Match[str]) -> str:
            word = match.group(1).lower()
            if self.may and not code:
                return _AT + ("everyone" if word == "room" else match.group(1))
            return match.group(0)

        # Discord pings for an escaped <@id> too: typed mention syntax gets a zero-width space.
        return _TYPED_MENTION_RE.sub(r"\1" + _ZWSP, _ROOM_WORD_RE.sub(swap, text))

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        data = data.replace(_AT, "")
        frame = self.stack[-1]
        if self.pre:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
            text = _CONTROL_RE.sub("", data.replace("\t", "    ")).replace("```", "`\u200b``")
            text = _TYPED_MENTION_RE.sub(r"\1" + _ZWSP, text)
        else:
            data = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", data))
            if data.startswith(" ") and frame.parts and frame.parts[-1].endswith(" "):
                data = data[1:]
            text = data if self.code else _escape(data, _MAYBE)
            text = self.mentions(text, bool(self.code))
        if self.anchors:
            for entry in reversed(self.stack):
                if entry.tag == "a":
                    entry.raw.append(data)
                    break
        frame.parts.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIP:
            self.skip += 1
            self.stack.append(_Frame(tag, {}))
            return
        if self.skip:
            return
        attributes = {name.lower(): value or "" for name, value in attrs}
        parts = self.stack[-1].parts
        if tag == "br":
            parts.append("\n")
            return
        if tag == "hr":
            parts.append(_BREAK + "\u2014\u2014\u2014" + _BREAK)
            return
        if tag == "img":
            parts.append(self.image(attributes))
            return
        if tag in _VOID:
            return
        frame = _Frame(tag, attributes)
        marker = _MARKS.get(tag, "||" if tag == "span" and "data-mx-spoiler" in attributes else "")
        if marker and not self.code and not self.pre and not self.marks.get(marker):
            frame.mark = marker
            self.marks[marker] = 1
        if tag == "ol":
            try:
                frame.counter = max(0, min(int(attributes.get("start") or 1), 10**9))
            except ValueError:
                frame.counter = 1
        if tag == "blockquote":
            frame.quote = self.quotes == 0
            self.quotes += 1
        if tag == "li" and self.levels < _MAX_LEVELS:
            frame.prefixed = True
            self.levels += 1
        if tag == "code" and self.pre and "class" in attributes:
            for entry in reversed(self.stack):
                if entry.tag == "pre":
                    entry.attrs.setdefault("class", attributes["class"])
                    break
        self.code += tag == "code"
        self.pre += tag == "pre"
        self.anchors += tag == "a"
        self.stack.append(frame)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _VOID or len(self.stack) < 2:
            return
        if self.skip and tag not in _SKIP:
            return
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                break
        else:
            return
        while len(self.stack) > index:
            self.close()

    def close(self) -> None:
        frame = self.stack.pop()
        parent = self.stack[-1].parts
        tag = frame.tag
        if tag in _SKIP:
            self.skip -= 1
            return
        if frame.mark:
            self.marks[frame.mark] = 0
        self.code -= tag == "code"
        self.pre -= tag == "pre"
        self.anchors -= tag == "a"
        content = "".join(frame.parts)
        if tag == "blockquote":
            self.quotes -= 1
        if tag == "li" and frame.prefixed:
            self.levels -= 1
        if frame.mark:
            content = _wrap(frame.mark, content)
            if content.startswith(" ") and parent and parent[-1].endswith(" "):
                content = content[1:]  # the space moved out of the markers was there already
        if tag == "code" and not self.pre:
            content = _code_span(content)
        elif tag == "pre" and not self.pre:
            content = self.pre_block(frame, content)  # the outermost: a pre in a pre is text
        elif tag == "a":
            content = self.anchor(frame, content)
            for outer in reversed(self.stack):
                if outer.tag == "a":  # a link inside a link: its text is the outer one's too
                    outer.raw.extend(frame.raw)
                    break
        elif tag == "blockquote" and frame.quote:
            lines = _resolve(content).split("\n")
            content = _BREAK + "\n".join("> " + line for line in lines) + _BREAK
        elif tag == "blockquote":
            content = _BREAK + content + _BREAK  # Discord has one quote level
        elif tag == "li":
            content = self.list_item(frame, content)
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            line = _resolve(content).replace("\n", " ").strip()
            if line:
                level = int(tag[1])
                line = ("#" * level + " " + line) if level <= 3 else _wrap("**", line)
            content = _PARA + line + _PARA
        elif tag == "p":
            content = _PARA + content + _PARA
        elif tag in _BREAKS:
            content = _BREAK + content + _BREAK
        parent.append(content)

    def pre_block(self, frame: _Frame, content: str) -> str:
        match = re.search(r"\blanguage-([A-Za-z0-9_+\-.#]{1,32})\b", frame.attrs.get("class", ""))
        lang = match.group(1) if match else ""
        content = content.strip("\n")
        return f"{_BREAK}```{lang}\n{content}\n```{_BREAK}"

    def list_item(self, frame: _Frame, content: str) -> str:
        marker = "- "
        for parent in reversed(self.stack):
            if parent.tag in ("ul", "ol"):
                if parent.tag == "ol":
                    marker = f"{parent.counter}. "
                    parent.counter += 1
                break
        if not frame.prefixed:
            return _BREAK + content + _BREAK
        lines = _resolve(content.lstrip(" ")).split("\n")
        indented = [marker + lines[0]] + [("  " + line if line else line) for line in lines[1:]]
        return _BREAK + "\n".join(indented) + _BREAK

    def anchor(self, frame: _Frame, label: str) -> str:
        href = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub("", frame.attrs.get("href", "")))
        raw = "".join(frame.raw).strip()
        target = _pill_target(href)
        names = self.names
        if target is not None:
            if target[0] == "@":
                user = names.ghost_user_id(target) if names else None
                if user and user.isdigit():
                    self.users.add(user)
                    return f"<@{user}>"
            else:
                channel = names.channel_id(target) if names else None
                if channel and channel.isdigit():
                    return f"<#{channel}>"
            return label.strip() or escape_text(target)
        if self.anchors or self.code or self.pre or not _SAFE_URL_RE.fullmatch(href):
            return label  # inside a link or code, or not http(s): its text
        if not label.strip() or raw.rstrip("/") == href.rstrip("/"):
            return href.replace("<", "%3C")  # a bare URL runs to a space or "<"
        url = href.replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
        return f"[{label.strip()}]({url})"

    def image(self, attributes: dict[str, str]) -> str:
        src = attributes.get("src", "")
        found = self.names.custom_emoji(src) if self.names and src else None
        if "data-mx-emoticon" in attributes and found is not None:
            name, emoji_id, animated = found
            if re.fullmatch(r"[A-Za-z0-9_]{1,32}", name) and emoji_id.isdigit():
                return f"<{'a' if animated else ''}:{name}:{emoji_id}>"
        alt = attributes.get("alt") or attributes.get("title") or ""
        alt = _CONTROL_RE.sub("", _HTML_SPACE_RE.sub(" ", alt))
        return self.mentions(escape_text(alt), True)

    def result(self) -> str:
        self.close_all()
        return _resolve("".join(self.stack[0].parts))

    def close_all(self) -> None:
        super().close()
        while len(self.stack) > 1:
            self.close()


def _finish(text: str, converter: _Converter) -> DiscordText:
    # An empty quote line keeps its space: a bare ">" would end the quote.
    lines = [line.rstrip(" ") for line in text.split("\n")]
    lines = ["> " if line == ">" else line for line in lines]
    text = "\n".join(lines).strip("\n ")
    text = _MAYBE_RE.sub(r"\1\\", text).replace(_MAYBE, "")
    text = _LEFTOVER_RE.sub("@" + _ZWSP, text)
    text = _settle_lt(text)
    everyone = _AT in text
    return DiscordText(text.replace(_AT, "@"), converter.users, everyone)


def matrix_to_discord(
    body: str,
    html: str | None = None,
    names: MatrixNames | None = None,
    *,
    may_mention_room: bool = False,
) -> DiscordText:
    """Convert a Matrix message (``formatted_body`` when given, else ``body``) to Discord.

    ``names`` maps pills back to Discord ids; ``may_mention_room`` says whether the sender
    may ping everyone (``@room`` -> ``@everyone``; typed ``@everyone``/``@here`` kept);
    otherwise those words are neutralised. ``user_ids``/``everyone`` of the result are what
    the message may ping: send them as ``allowed_mentions``.
    """
    converter = _Converter(names, may_mention_room)
    if html is None:
        text = body.replace("\r\n", "\n").replace("\r", "\n").replace(_AT, "")
        text = _CONTROL_RE.sub("", text.replace("\t", "    "))
        return _finish(converter.mentions(escape_text(text), False), converter)
    try:
        converter.feed(html)
        text = converter.result()
    except (AssertionError, ValueError):
        # html.parser gives up on some malformed markup (``<![`` on Python 3.11): the body,
        # or else the markup's text, as plain text.
        plain = body or _html.unescape(re.sub(r"<[^>]*>", "", html))
        return matrix_to_discord(plain, None, names, may_mention_room=may_mention_room)
    return _finish(text, converter)
