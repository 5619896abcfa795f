"""Slack mrkdwn <-> Matrix ``org.matrix.custom.html``: pure functions, no I/O.

Slack -> Matrix (:func:`mrkdwn_to_matrix`); the connector first resolves the ids a text names
(:func:`mentioned_ids`) and hands the answers in as a :class:`SlackNames`:

==============================  =====================================  ==========================
Slack text                      Matrix HTML                            plain body
==============================  =====================================  ==========================
``&lt; &gt; &amp;``             ``&lt; &gt; &amp;`` (escaped again)    ``< > &``
``<@U1>`` / ``<@U1|name>``      pill ``<a href="https://matrix.to/#/   display name
                                @ghost:hs">Name</a>``; no mxid:
                                ``@name``
``<#C1>`` / ``<#C1|name>``      room pill to the portal (``#name``);   ``#name``
                                no room: ``#name``
``<!here>`` ``<!channel>``      ``@here`` ``@channel`` ``@everyone``   same (the connector decides
``<!everyone>``                 as text                                about ``m.mentions.room``)
``<!subteam^S1|@team>``         ``@team``                              ``@team``
``<!date^ts^fmt|fallback>``     the fallback (else the UTC time)       same
``<url>`` ``<url|text>``        ``<a href>`` for http(s) and mailto    ``text (url)``, or ``url``
                                only; any other scheme (``javascript:``
                                ``slack:``): ``text (url)`` as text
``<anything else>``             the literal ``<anything else>``        same
``*b*`` ``_i_`` ``~s~``         ``<strong>`` ``<em>`` ``<del>``        the text as written
`` `c` ``                       ``<code>`` (nothing formatted inside)  as written
```` ```c``` ````               ``<pre><code>`` (nothing inside)       as written
``&gt; q`` lines; ``&gt;&gt;&gt;``  one ``<blockquote>`` per run;      as written
                                ``>>>``: the rest of the message
``•``/``◦``/``▪``/``-`` lines   ``<ul><li>`` (4 spaces: one level)     as written
``1.``/``1)`` lines             ``<ol><li>`` (``start`` if not 1)      as written
``:smile:`` ``:+1::skin-tone-3:``  unicode: Slack's names, then the     unicode
                                ``emoji`` package's aliases and names
``:flag-de:`` ``:man-woman-boy:``   built from the name                unicode
``:custom:`` / unknown          left as ``:custom:``                   same
newline                         ``<br>``                               newline
==============================  =====================================  ==========================

Formatting markers follow Slack: an opening ``*``/``_``/``~`` follows a start, space or
punctuation and precedes a non-space; a closing one the reverse; a marker touching the same
character (``**``, ``__init__``) is literal; no marker spans a line; markers are paired with a
stack (linear time). Inside code, mentions and links become their text, nothing else is parsed.
All text reaching the HTML passes through :func:`html.escape`: no markup from Slack reaches
Matrix. ``formatted_body`` is None when nothing needs HTML.

Matrix -> Slack (:func:`matrix_to_mrkdwn`, in :mod:`.html_to_mrkdwn`):
``matrix_to_mrkdwn(body, html, names, may_mention_room=...)`` reads ``html`` when given (the
reply fallback already stripped by the runtime; ``<mx-reply>`` is dropped anyway), else escapes
``body``; ``names`` is a :class:`MatrixNames` (:class:`NameTable` is both lookups).

======================================  ======================================================
Matrix                                  Slack text
======================================  ======================================================
``& < >`` in any text                   ``&amp; &lt; &gt;`` (so ``<!channel>`` or ``<@U1>``
                                        typed on Matrix stay text)
user pill (matrix.to or ``matrix:u/``)  ``<@U1>`` when it maps to a Slack user, else its name
room pill                               ``<#C1>`` when it maps to a Slack channel, else its text
``@room``                               ``<!channel>`` (or ``<!here>``) only when
                                        ``may_mention_room``, else left as ``@room`` (no Slack
                                        meaning); ``@channel``/``@here`` likewise become
                                        ``<!channel>``/``<!here>``, else (and ``@everyone``
                                        always, code always, any left over such as ``a@here``)
                                        get a word joiner: ``@\\u2060channel``
bold mid-word (``a<b>b</b>c``)          ``a*b*c``, which Slack shows unformatted
``strong/b`` ``em/i`` ``del/s``         ``*b*`` ``_i_`` ``~s~`` (spaces moved outside markers)
``code``                                `` `c` `` (a backtick inside becomes ``ˋ``)
``pre``                                 ```` ``` ```` block on its own lines
``blockquote``                          ``> `` lines
``ul``/``ol``/``li``                    ``• ``/``◦ ``, ``1. ``; four spaces per level
``a href`` (http(s), mailto)            ``<url|text>``, or ``<url>`` when the text is the url
``a href`` other schemes                the text only
``br`` ``p`` ``div`` ``h1-6`` ``tr``    newlines (a blank line after ``p``, ``pre``, ``h1-6``)
``mx-reply``, ``script``, ``style``     dropped with their content
any other tag                           its text
======================================  ======================================================

Unicode emoji are sent to Slack as they are (Slack renders them); :func:`emoji_name` gives the
Slack name of one for ``reactions.add``, :func:`emoji_unicode` the reverse.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple, Protocol
from urllib.parse import quote

from .html_to_mrkdwn import matrix_to_mrkdwn

__all__ = [
    "MatrixNames",
    "Mentioned",
    "NameTable",
    "SlackChannel",
    "SlackNames",
    "SlackUser",
    "emoji_name",
    "emoji_unicode",
    "matrix_to_mrkdwn",
    "mentioned_ids",
    "mrkdwn_to_matrix",
    "pill_href",
]


# ---------------------------------------------------------------------------------------------
# What the connector resolves first


class SlackUser(NamedTuple):
    """A Slack user as Matrix shows them: the ghost (or puppeted user) and a display name."""

    mxid: str | None
    name: str


class SlackChannel(NamedTuple):
    """A Slack channel: its portal (``#alias:hs``, ``!id:hs`` or an https link) and name."""

    room: str | None
    name: str


class SlackNames(Protocol):
    """Answers for the ids a Slack text names; lookups only, never I/O."""

    def user(self, user_id: str) -> SlackUser | None: ...

    def channel(self, channel_id: str) -> SlackChannel | None: ...


class MatrixNames(Protocol):
    """The reverse: the Slack id behind a Matrix user or room, if any; lookups only."""

    def slack_user(self, mxid: str) -> str | None: ...

    def slack_channel(self, room: str) -> str | None: ...


@dataclass
class NameTable:
    """Both lookups from two dicts the connector fills after resolving :func:`mentioned_ids`."""

    users: Mapping[str, SlackUser] = field(default_factory=dict)
    channels: Mapping[str, SlackChannel] = field(default_factory=dict)
    # The reverse lookups, built on first use (the table is built per message).
    _by_mxid: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _by_room: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def user(self, user_id: str) -> SlackUser | None:
        return self.users.get(user_id)

    def channel(self, channel_id: str) -> SlackChannel | None:
        return self.channels.get(channel_id)

    def slack_user(self, mxid: str) -> str | None:
        if self._by_mxid is None:
            self._by_mxid = {u.mxid: uid for uid, u in reversed(self.users.items()) if u.mxid}
        return self._by_mxid.get(mxid)

    def slack_channel(self, room: str) -> str | None:
        if self._by_room is None:
            self._by_room = {c.room: cid for cid, c in reversed(self.channels.items()) if c.room}
        return self._by_room.get(room)


class Mentioned(NamedTuple):
    """The ids a Slack text names, each once, in order of appearance."""

    users: list[str]
    channels: list[str]
    usergroups: list[str]
    #: ``here``, ``channel``, ``everyone`` as they appear.
    specials: list[str]


_USER_ID_RE = re.compile(r"[UWB][A-Z0-9]{1,31}")
_CHANNEL_ID_RE = re.compile(r"[CGD][A-Z0-9]{1,31}")
_ANGLE_RE = re.compile(r"<([^<>\n]*)>")
_ENTITY_RE = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_SAFE_URL_RE = re.compile(r"(?:https?://|mailto:)", re.IGNORECASE)
_SPECIALS = ("here", "channel", "everyone")


def _unescape(text: str) -> str:
    """Slack's own escaping only (``&amp; &lt; &gt;``), in one pass."""
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(lambda m: _ENTITIES[m.group(1)], text)


def _esc(text: str) -> str:
    return _html.escape(text, quote=False)


def mentioned_ids(text: str) -> Mentioned:
    """Every user, channel, user group and special mention in ``text``, code included."""
    users: dict[str, None] = {}
    channels: dict[str, None] = {}
    groups: dict[str, None] = {}
    specials: dict[str, None] = {}
    for match in _ANGLE_RE.finditer(text):
        target = match.group(1).partition("|")[0]
        if target.startswith("@") and _USER_ID_RE.fullmatch(target[1:]):
            users[target[1:]] = None
        elif target.startswith("#") and _CHANNEL_ID_RE.fullmatch(target[1:]):
            channels[target[1:]] = None
        elif target.startswith("!subteam^"):
            groups[target[len("!subteam^") :]] = None
        elif target[1:] in _SPECIALS and target.startswith("!"):
            specials[target[1:]] = None
    return Mentioned(list(users), list(channels), list(groups), list(specials))


def pill_href(target: str) -> str:
    """A ``matrix.to`` link for a user ID, room alias or room ID."""
    return "https://matrix.to/#/" + quote(target, safe="@!:._=-/+")


# ---------------------------------------------------------------------------------------------
# Emoji


_SKIN_TONES = {f"skin-tone-{n}": chr(0x1F3F9 + n) for n in range(2, 7)}  # 🏻..🏿
_FAMILY = {"man": "👨", "woman": "👩", "girl": "👧", "boy": "👦"}
_ZWJ = "\u200d"
_SUBDIVISION_FLAGS = {"england": "gbeng", "scotland": "gbsct", "wales": "gbwls"}

# Slack's names (iamcal/emoji-data) where the emoji package has no such alias.
_SLACK_EMOJI = {
    "simple_smile": "🙂",
    "the_horns": "🤘",
    "spock-hand": "🖖",
    "face_palm": "🤦",
    "i_love_you_hand_sign": "🤟",
    "hand_with_index_and_middle_fingers_crossed": "🤞",
    "keycap_star": "*️⃣",
    "squirrel": "🐿️",
    "smiling_face_with_3_hearts": "🥰",
    "grinning_face_with_star_eyes": "🤩",
    "grinning_face_with_one_large_and_one_small_eye": "🤪",
    "serious_face_with_symbols_covering_mouth": "🤬",
    "shocked_face_with_exploding_head": "🤯",
    "face_with_finger_covering_closed_lips": "🤫",
    "smiling_face_with_smiling_eyes_and_hand_covering_mouth": "🤭",
    "face_with_open_mouth_vomiting": "🤮",
    "face_with_cowboy_hat": "🤠",
    "mother_christmas": "🤶",
    "mostly_sunny": "🌤️",
    "barely_sunny": "🌥️",
    "partly_sunny_rain": "🌦️",
    "rain_cloud": "🌧️",
    "snow_cloud": "🌨️",
    "lightning": "🌩️",
    "staff_of_aesculapius": "⚕️",
    "large_green_circle": "🟢",
    "large_orange_circle": "🟠",
    "large_yellow_circle": "🟡",
    "large_purple_circle": "🟣",
    "large_brown_circle": "🟤",
    "large_red_square": "🟥",
    "large_orange_square": "🟧",
    "large_yellow_square": "🟨",
    "large_green_square": "🟩",
    "large_blue_square": "🟦",
    "large_purple_square": "🟪",
    "large_brown_square": "🟫",
    "male-police-officer": "👮\u200d♂️",
    "female-police-officer": "👮\u200d♀️",
    "male-doctor": "👨\u200d⚕️",
    "female-doctor": "👩\u200d⚕️",
    "male_vampire": "🧛\u200d♂️",
    "female_vampire": "🧛\u200d♀️",
    "first_place_medal": "🥇",
    "second_place_medal": "🥈",
    "third_place_medal": "🥉",
    "man-heart-man": "👨\u200d❤️\u200d👨",
    "woman-heart-man": "👩\u200d❤️\u200d👨",
    "woman-heart-woman": "👩\u200d❤️\u200d👩",
    "man-kiss-man": "👨\u200d❤️\u200d💋\u200d👨",
    "woman-kiss-man": "👩\u200d❤️\u200d💋\u200d👨",
    "woman-kiss-woman": "👩\u200d❤️\u200d💋\u200d👩",
}
# The name Slack uses for these when the emoji package's first alias is another one.
_SLACK_NAME = {"👍": "+1", "👎": "-1", "🙂": "slightly_smiling_face"}


@lru_cache(maxsize=1)
def _alias_table() -> tuple[dict[str, str], dict[str, str]]:
    import emoji  # the slack extra's dependency; imported on first use

    by_name: dict[str, str] = {}
    by_char: dict[str, str] = {}
    for char, data in emoji.EMOJI_DATA.items():
        for alias in data.get("alias", ()):
            by_name.setdefault(alias.strip(":"), char)
    for char, data in emoji.EMOJI_DATA.items():
        by_name.setdefault(data["en"].strip(":"), char)  # man_shrugging for man-shrugging
        aliases = data.get("alias")
        name = (aliases[0] if aliases else data["en"]).strip(":")
        by_char.setdefault(char.replace("\ufe0f", ""), name)
    for name, char in _SLACK_EMOJI.items():
        by_char.setdefault(char.replace("\ufe0f", ""), name)
    return by_name, by_char


def emoji_unicode(name: str) -> str | None:
    """The unicode of a Slack emoji name (``smile``, ``+1::skin-tone-2``), or None (custom)."""
    base, _, tone = name.partition("::")
    if tone:
        modifier = _SKIN_TONES.get(tone)
        char = emoji_unicode(base)
        if modifier is None or char is None:
            return None
        first = char.replace("\ufe0f", "")
        # The modifier follows the first code point of a ZWJ sequence (👮🏽‍♂️).
        return first[0] + modifier + first[1:]
    if name in _SLACK_EMOJI:
        return _SLACK_EMOJI[name]
    if name in _SKIN_TONES:
        return _SKIN_TONES[name]
    by_name, _ = _alias_table()
    for candidate in (name, name.replace("-", "_")):
        if candidate in by_name:
            return by_name[candidate]
    if name.startswith("flag-"):
        code = name[5:].lower()
        if len(code) == 2 and code.isascii() and code.isalpha():
            return "".join(chr(0x1F1E6 + ord(c) - ord("a")) for c in code)
        if code in _SUBDIVISION_FLAGS:
            tag = "".join(chr(0xE0000 + ord(c)) for c in _SUBDIVISION_FLAGS[code])
            return "🏴" + tag + "\U000e007f"
        return None
    parts = name.split("-")
    if len(parts) >= 2 and all(part in _FAMILY for part in parts):
        return _ZWJ.join(_FAMILY[part] for part in parts)
    for prefix, person in (("male-", "man_"), ("female-", "woman_")):
        if name.startswith(prefix):
            candidate = person + name[len(prefix) :].replace("-", "_")
            if candidate in by_name:
                return by_name[candidate]
    return None


def emoji_name(char: str) -> str | None:
    """The Slack name of a unicode emoji (for ``reactions.add``), skin tone included."""
    char = char.replace("\ufe0f", "")
    tone = next((c for c in char if 0x1F3FB <= ord(c) <= 0x1F3FF), None)
    if tone:
        base = emoji_name(char.replace(tone, ""))
        return f"{base}::skin-tone-{ord(tone) - 0x1F3F9}" if base else None
    if char in _SLACK_NAME:
        return _SLACK_NAME[char]
    return _alias_table()[1].get(char)


# ---------------------------------------------------------------------------------------------
# Slack -> Matrix


@dataclass
class _Atom:
    """A unit no marker can enter: its HTML, its plain text, its text inside code."""

    html: str
    body: str
    code: str
    markup: bool = True


_NO_NAMES = NameTable()


def _format_date(target: str, label: str) -> str:
    if label:
        return label
    fields = target.split("^")
    try:
        when = _dt.datetime.fromtimestamp(int(fields[1]), _dt.UTC)
    except (IndexError, ValueError, OverflowError, OSError):
        return ""
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _link_label_is_url(url: str, label: str) -> bool:
    def norm(value: str) -> str:
        value = re.sub(r"^(?:https?://|mailto:)", "", value.strip(), flags=re.IGNORECASE)
        return value.rstrip("/").lower()

    return not label or norm(url) == norm(label)


def _angle_atom(inner: str, raw: str, names: SlackNames) -> _Atom:
    """``<...>`` (``inner`` still Slack-escaped) as an atom."""
    target, bar, label_raw = inner.partition("|")
    label = _unescape(label_raw)
    if target.startswith("@") and _USER_ID_RE.fullmatch(target[1:]):
        user = names.user(target[1:])
        if user is not None and user.mxid:
            return _Atom(
                f'<a href="{_html.escape(pill_href(user.mxid))}">{_esc(user.name)}</a>',
                user.name,
                "@" + user.name,
            )
        name = "@" + (user.name if user else label or target[1:])
        return _Atom(_esc(name), name, name, markup=False)
    if target.startswith("#") and _CHANNEL_ID_RE.fullmatch(target[1:]):
        channel = names.channel(target[1:])
        name = "#" + (channel.name if channel else label or target[1:])
        if channel is not None and channel.room:
            href = channel.room if channel.room.startswith("https://") else pill_href(channel.room)
            return _Atom(f'<a href="{_html.escape(href)}">{_esc(name)}</a>', name, name)
        return _Atom(_esc(name), name, name, markup=False)
    if target.startswith("!"):
        keyword = target[1:]
        if keyword in _SPECIALS:
            text = "@" + keyword
        elif keyword.startswith("subteam^"):
            text = label or "@" + keyword[len("subteam^") :]
        elif keyword.startswith("date^"):
            text = _format_date(keyword, label)
        else:
            text = label or _unescape(raw)
        return _Atom(_esc(text), text, text, markup=False)
    url = _unescape(target)
    if _SAFE_URL_RE.match(url) and not any(c.isspace() or ord(c) < 32 for c in url):
        shown = label or url
        body = (label or url) if _link_label_is_url(url, label) else f"{label} ({url})"
        return _Atom(f'<a href="{_html.escape(url)}">{_esc(shown)}</a>', body, shown)
    if _SCHEME_RE.match(url):
        # Any other scheme (javascript:, data:, slack:) is shown, never linked.
        text = url if _link_label_is_url(url, label) else f"{label} ({url})"
        return _Atom(_esc(text), text, label or url, markup=False)
    text = _unescape(raw)  # not a Slack construct at all: the literal text
    return _Atom(_esc(text), text, text, markup=False)


def _code_text(raw: str, names: SlackNames) -> str:
    """Code content: entities decoded, mentions and links as their text, nothing else."""
    out: list[str] = []
    pos = 0
    for match in _ANGLE_RE.finditer(raw):
        out.append(_unescape(raw[pos : match.start()]))
        out.append(_angle_atom(match.group(1), match.group(0), names).code)
        pos = match.end()
    out.append(_unescape(raw[pos:]))
    return "".join(out)


# Atoms of a line, tried at each position: a <...> construct, a code span, a bare URL (kept
# whole so its underscores are not markers), an emoji shortcode. Every alternative stops at
# the next character of its own kind, so the scan stays linear.
_INLINE_RE = re.compile(
    r"<[^<>\n]*>"
    r"|`[^`\n]+`"
    r"|https?://[^\s<>`|]+"
    r"|:[A-Za-z0-9_+'\-]{1,100}:(?::skin-tone-[2-6]:)?",
    re.IGNORECASE,
)
_URL_TRAIL = ".,;:!?'\")]*_~"
_MARKERS = {"*": "strong", "_": "em", "~": "del"}


@dataclass
class _Delim:
    char: str
    open_tag: str = ""
    close_tag: str = ""


def _inline(line: str, names: SlackNames) -> tuple[str, str, bool]:
    """One line of Slack text -> (html, body, used markup)."""
    pieces: list[str | _Atom | _Delim] = []
    markup = False

    def add_text(start: int, end: int) -> None:
        pos = start
        for index in range(start, end):
            char = line[index]
            if char not in _MARKERS:
                continue
            prev = line[index - 1] if index > 0 else ""
            nxt = line[index + 1] if index + 1 < len(line) else ""
            can_open = bool(nxt) and not nxt.isspace() and nxt != char
            can_open = can_open and (not prev or (not prev.isalnum() and prev != char))
            can_close = bool(prev) and not prev.isspace() and prev != char
            can_close = can_close and (not nxt or (not nxt.isalnum() and nxt != char))
            if not (can_open or can_close):
                continue
            if index > pos:
                pieces.append(line[pos:index])
            pieces.append(_Delim(char))
            flags.append((len(pieces) - 1, can_open, can_close))
            pos = index + 1
        if end > pos:
            pieces.append(line[pos:end])

    flags: list[tuple[int, bool, bool]] = []
    pos = 0
    search_from = 0
    while True:
        match = _INLINE_RE.search(line, search_from)
        if match is None:
            break
        token = match.group(0)
        start, end = match.span()
        atom: _Atom | None = None
        first = token[0]
        if first == "<":
            atom = _angle_atom(token[1:-1], token, names)
        elif first == "`":
            code = _code_text(token[1:-1], names)
            atom = _Atom(f"<code>{_esc(code)}</code>", "`" + code + "`", code)
        elif first == ":":
            name = token.strip(":")
            char = None if name.startswith("skin-tone-") else emoji_unicode(name)
            if char is None:
                # Not an emoji (a custom one?): `:name` is kept whole, never formatted, and
                # its closing colon may open the next shortcode.
                end = start + token.index(":", 1)
                literal = _unescape(line[start:end])
                atom = _Atom(_esc(literal), literal, literal, markup=False)
            else:
                atom = _Atom(char, char, char, markup=False)
        else:
            trimmed = token.rstrip(_URL_TRAIL)
            end = start + len(trimmed)
            url = _unescape(trimmed)
            atom = _Atom(_esc(url), url, url, markup=False)
        add_text(pos, start)
        pieces.append(atom)
        markup = markup or atom.markup
        pos = search_from = end
    add_text(pos, len(line))

    # Pair markers with a stack; a closer pairs with the nearest opener of its character and
    # the openers above it stay literal. `open_count` keeps the search amortised linear.
    stack: list[int] = []
    open_count = dict.fromkeys(_MARKERS, 0)
    for index, can_open, can_close in flags:
        delim = pieces[index]
        assert isinstance(delim, _Delim)
        if can_close and open_count[delim.char]:
            while True:
                opener = pieces[stack.pop()]
                assert isinstance(opener, _Delim)
                open_count[opener.char] -= 1
                if opener.char == delim.char:
                    break
            tag = _MARKERS[delim.char]
            opener.open_tag, delim.close_tag = f"<{tag}>", f"</{tag}>"
            markup = True
        elif can_open:
            stack.append(index)
            open_count[delim.char] += 1

    html_out: list[str] = []
    body_out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            text = _unescape(piece)
            html_out.append(_esc(text))
            body_out.append(text)
        elif isinstance(piece, _Atom):
            html_out.append(piece.html)
            body_out.append(piece.body)
        else:
            html_out.append(piece.open_tag or piece.close_tag or piece.char)
            body_out.append(piece.char)
    return "".join(html_out), "".join(body_out), markup


_QUOTE_RE = re.compile(r"(?:&gt;|>)(?:&gt;&gt;|>>)?")
_LIST_RE = re.compile(r"([ \t]*)(?:[•◦▪▫‣\-]|([0-9]{1,3})[.)])[ \t]+")


@dataclass
class _Block:
    quoted: bool
    kind: str  # "line", "li", "code"
    html: str = ""
    level: int = 0
    list: str = "ul"  # for "li": "ul" or "ol"
    start: int = 1


def _split_fences(text: str) -> list[tuple[bool, str]]:
    """(is code, text) chunks; an unpaired or empty fence is literal text."""
    parts = text.split("```")
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + "```" + parts[-1]]
    chunks: list[tuple[bool, str]] = []
    for index, part in enumerate(parts):
        if index % 2 and part.strip("\n"):
            chunks.append((True, part))
        elif index % 2:
            literal = "```" + part + "```"
            chunks.append((False, literal))
        else:
            chunks.append((False, part))
    merged: list[tuple[bool, str]] = []
    for is_code, part in chunks:
        if merged and not is_code and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + part)
        else:
            merged.append((is_code, part))
    return merged


def mrkdwn_to_matrix(text: str, names: SlackNames | None = None) -> tuple[str, str | None]:
    """Convert a Slack message's ``text`` to ``(body, formatted_body)`` for Matrix.

    ``names`` answers for the ids the text names (see :func:`mentioned_ids`); without it
    mentions fall back to their labels or ids. ``formatted_body`` is fully escaped HTML, or
    None when plain text says it all.
    """
    names = names if names is not None else _NO_NAMES
    chunks = _split_fences(text)
    blocks: list[_Block] = []
    bodies: list[str] = []
    markup = False
    in_triple = False  # after >>>: the rest of the message is quoted
    for index, (is_code, chunk) in enumerate(chunks):
        if is_code:
            content = _code_text(chunk, names)
            body = "```" + content + "```"
            if content.startswith("\n"):
                content = content[1:]
            if content.endswith("\n"):
                content = content[:-1]
            prefix_quoted = bool(blocks) and blocks[-1].kind == "quote-marker"
            if prefix_quoted:
                blocks.pop()
            pre = f"<pre><code>{_esc(content)}</code></pre>"
            blocks.append(_Block(in_triple or prefix_quoted, "code", pre))
            bodies.append(body)
            markup = True
            continue
        lines = chunk.split("\n")
        for number, line in enumerate(lines):
            after_code = number == 0 and index > 0
            before_code = number == len(lines) - 1 and index + 1 < len(chunks)
            if number:
                bodies.append("\n")
            if (after_code or before_code) and line == "":
                continue  # the newline next to a fence is not an empty line
            quoted = in_triple
            content = line
            marker = _QUOTE_RE.match(line) if not after_code else None
            if marker and not in_triple:
                quoted = True
                if marker.group(0) in (">>>", "&gt;&gt;&gt;"):
                    in_triple = True
                content = line[marker.end() :]
                if content.startswith(" "):
                    content = content[1:]
                bodies.append(_unescape(line[: len(line) - len(content)]))
            if before_code and quoted and content.strip() == "":
                blocks.append(_Block(True, "quote-marker"))
                continue
            listed = _LIST_RE.match(content) if not after_code else None
            html_part, body_part, used = _inline(
                content[listed.end() :] if listed else content, names
            )
            markup = markup or used or quoted
            if listed:
                indent = listed.group(1).replace("\t", "    ")
                digits = listed.group(2)
                kind, start = ("ol", int(digits)) if digits else ("ul", 1)
                blocks.append(_Block(quoted, "li", html_part, len(indent) // 4, kind, start))
                bodies.append(listed.group(0) + body_part)
                markup = True
            else:
                blocks.append(_Block(quoted, "line", html_part))
                bodies.append(body_part)
    body = "".join(bodies)
    if not markup:
        return body, None
    return body, _render_blocks([b for b in blocks if b.kind != "quote-marker"])


def _render_blocks(blocks: list[_Block]) -> str:
    out: list[str] = []
    index = 0
    while index < len(blocks):
        end = index
        while end < len(blocks) and blocks[end].quoted == blocks[index].quoted:
            end += 1
        inner = _render_group(blocks[index:end])
        out.append(f"<blockquote>{inner}</blockquote>" if blocks[index].quoted else inner)
        index = end
    return "".join(out)


def _render_group(blocks: list[_Block]) -> str:
    out: list[str] = []
    index = 0
    previous_line = False
    while index < len(blocks):
        block = blocks[index]
        if block.kind == "li":
            end = index
            while end < len(blocks) and blocks[end].kind == "li":
                end += 1
            out.append(_render_list(blocks[index:end]))
            index = end
            previous_line = False
            continue
        if block.kind == "code":
            out.append(block.html)
            previous_line = False
        else:
            if previous_line:
                out.append("<br>")
            out.append(block.html)
            previous_line = True
        index += 1
    return "".join(out)


def _render_list(items: list[_Block]) -> str:
    """List items (level, ``ul``/``ol``) as nested lists; a level never jumps by more than one."""
    out: list[str] = []
    stack: list[str] = []  # the open lists, outermost first
    for item in items:
        level = max(0, min(item.level, len(stack)))
        if level < len(stack):
            out.append("</li>")
            while len(stack) > level + 1:
                out.append(f"</{stack.pop()}></li>")
            if stack[-1] == item.list:
                out.append("<li>")
                out.append(item.html)
                continue
            out.append(f"</{stack.pop()}>")  # bullets then numbers: a new list
        start = f' start="{item.start}"' if item.list == "ol" and item.start != 1 else ""
        out.append(f"<{item.list}{start}><li>")
        stack.append(item.list)
        out.append(item.html)
    out.append("</li>")
    while stack:
        out.append(f"</{stack.pop()}>")
        if stack:
            out.append("</li>")
    return "".join(out)
