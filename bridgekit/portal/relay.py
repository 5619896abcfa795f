"""How a message relayed for a Matrix user without a login of their own is labelled.

The relay login sends for everyone, so the label (``<name> `` by default) is all that tells
one Matrix sender from another on the network. It must hold on every line: a relayed
``hi\\n<bob> I am bob`` would otherwise show as a line from bob. So the label goes on every
line a message becomes (by the runtime on the body, or by a connector that wraps long lines,
see :class:`~bridgekit.contract.connector.RelayLineHandler`), names lose control characters (a CR/LF
in a display name would start a line of its own), and a name two members of the room share is
told apart by the Matrix id (as Matrix clients disambiguate).

A network that shows a sender's name and avatar itself (Discord webhooks, Slack ``username`` /
``icon_url``) needs no label: its connector gets a :class:`RelaySender` and the content as sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SPACE_RE = re.compile(r"\s+")
MAX_NAME = 64


def clean_name(name: str) -> str:
    """``name`` without control, format (bidi overrides, zero-width), private-use or
    unassigned characters and line or paragraph separators; whitespace runs become one space."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in name
        if ch.isspace() or not unicodedata.category(ch).startswith(("C", "Zl", "Zp"))
    )
    return _SPACE_RE.sub(" ", kept).strip()[:MAX_NAME].strip()


def localpart(mxid: str) -> str:
    return mxid[1:].split(":", 1)[0] if mxid.startswith("@") else mxid


def relay_name(
    mxid: str, displayname: str | None, members: Iterable[tuple[str, str | None]] | None
) -> str:
    """The name ``mxid`` is labelled with: its cleaned display name (else localpart), followed
    by ``(mxid)`` when another of ``members`` (mxid, display name) would be labelled the same,
    or when the members are not known (None)."""
    name = clean_name(displayname or "") or clean_name(localpart(mxid)) or clean_name(mxid)
    if members is None:
        return f"{name} ({clean_name(mxid)})"
    folded = name.casefold()
    for other, other_name in members:
        if other == mxid:
            continue
        theirs = clean_name(other_name or "") or clean_name(localpart(other))
        # Also their name as told apart, so that "Sam (@sam:x)" cannot pose as @sam:x.
        if folded in (theirs.casefold(), f"{theirs} ({clean_name(other)})".casefold()):
            return f"{name} ({clean_name(mxid)})"
    return name
