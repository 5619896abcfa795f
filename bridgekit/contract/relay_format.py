"""How a relayed message is labelled: the part of the relay the contract carries.

:class:`RelayFormat` travels on :attr:`~bridgekit.contract.events.MatrixMessage.relay` to a
connector that wraps long lines itself (a
:class:`~bridgekit.contract.connector.RelayLineHandler`), so it lives in the contract; the
runtime's side of the relay (clean names, telling members apart) is :mod:`bridgekit.portal.relay`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol


class LabelledContent(Protocol):
    """What :meth:`RelayFormat.apply` labels: a :class:`~bridgekit.contract.events.MessageContent`.
    A protocol, not that class: events.py imports this module (``MatrixMessage.relay``)."""

    body: str
    html: str | None


#: HTML that makes more than one line: a label only at its start would not cover the others.
_HTML_BREAK_RE = re.compile(r"<\s*(br|p|div|li|tr|h[1-6]|pre|blockquote|hr|ol|ul)\b|\n", re.I)


@dataclass(frozen=True)
class RelayFormat:
    """The relay template (``bridge.relay.format`` or ``emote_format``) with the sender's
    fields filled in; ``{message}`` is one line of the message."""

    template: str
    displayname: str
    mxid: str

    def line(self, text: str) -> str:
        return self.template.format(message=text, displayname=self.displayname, mxid=self.mxid)

    def overhead(self) -> int:
        """Bytes the label adds to each line."""
        return len(self.line("").encode("utf-8"))

    def apply(self, content: LabelledContent) -> None:
        """Label every line of ``content``'s body. HTML of one line is labelled too; HTML of
        several is dropped (the labelled body is sent instead) rather than labelled once."""
        content.body = "\n".join(self.line(part) for part in content.body.split("\n"))
        if content.html is None:
            return
        if _HTML_BREAK_RE.search(content.html):
            content.html = None
            return
        from html import escape

        content.html = escape(self.template).format(
            message=content.html, displayname=escape(self.displayname), mxid=escape(self.mxid)
        )


@dataclass(frozen=True)
class RelaySender:
    """Who a relayed message is from, for a connector that renders the sender itself (see
    :class:`~bridgekit.contract.connector.RendersRelaySender`); the content then carries no label.

    Every field is safe to show: ``displayname`` is the room member name cleaned like a label
    (no control or format characters, no line breaks, at most :data:`MAX_NAME` characters,
    followed by `` (mxid)`` when another member shares it), and ``avatar_url`` is an
    http(s) link through the bridge's signed media links (never an ``mxc://`` URI the network
    cannot fetch), or None."""

    mxid: str
    displayname: str
    avatar_url: str | None = None
