"""IRC nick mentions in text: which words of a line name a channel member.

Used for IRC -> Matrix pills; a mention is a whole nick-shaped word, compared under the
server's casemapping, found with one dict lookup per word however many nicks there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from .names import casefold

_V = TypeVar("_V")

# A nick character is anything a nick may contain, plus any other word character
# (so "bob" is not found inside "bobé" either); "~" because rfc1459 folds it to "^".
# A mention must not touch another nick character on either side, so it is always a whole
# maximal run of these characters: looking each run up in a dict finds every mention in
# O(words), however many nicks the channel has.
_NICK_TOKEN_RE = re.compile(r"[\w\[\]\\`^{|}~\-]+")


def find_mentions(
    text: str, nicks: Mapping[str, _V], *, casemapping: str = "rfc1459"
) -> list[tuple[int, int, _V]]:
    """Mentions in ``text`` of the nicks in ``nicks`` (case-folded nick -> value).

    Returns ``(start, end, value)`` per mention, in order. ``text`` is folded with the
    server's ``casemapping`` once; each nick-shaped word is one dict lookup. A word inside an
    HTML character reference (``&amp;``, ``&#x27;``) is not a mention.
    """
    if not nicks or not text:
        return []
    folded = casefold(text, casemapping)
    # casefold() maps character for character, so indices in `folded` are valid in `text`.
    found: list[tuple[int, int, _V]] = []
    get = nicks.get
    for match in _NICK_TOKEN_RE.finditer(folded):
        value = get(match.group())
        if value is None:
            continue
        start, end = match.span()
        if end < len(text) and text[end] == ";" and _after_ampersand(text, start):
            continue  # an entity name or number, not a word
        found.append((start, end, value))
    return found


def _after_ampersand(text: str, start: int) -> bool:
    return start > 0 and (
        text[start - 1] == "&" or (text[start - 1] == "#" and start > 1 and text[start - 2] == "&")
    )


def find_nick_mentions(
    text: str, nicks: Iterable[str], *, casemapping: str = "rfc1459"
) -> list[tuple[int, int, str]]:
    """Find non-overlapping mentions of ``nicks`` in ``text`` as ``(start, end, nick)``.

    Matching uses the server's casemapping, and a mention must not touch
    another nick character on either side (so ``bob`` is not found in
    ``bob_`` or ``[bob]x``), so the longest nick wins; ``nick`` is returned
    as given in ``nicks``. Callers with a standing folded-nick dict use
    :func:`find_mentions` instead of rebuilding one per line.
    """
    canonical: dict[str, str] = {}
    for nick in nicks:
        if nick:
            canonical.setdefault(casefold(nick, casemapping), nick)
    return find_mentions(text, canonical, casemapping=casemapping)
