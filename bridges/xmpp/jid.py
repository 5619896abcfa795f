"""JIDs and text that is safe to put in a stanza.

* XEP-0106 escaping, so a Matrix localpart such as ``o'brien`` or ``a:b`` becomes a valid JID
  node and comes back unchanged.
* The puppet JID template (how Matrix users appear on XMPP): ``{localpart}_{server}`` by
  default, rendered with XEP-0106 escaping and parsed back.
* :func:`clean_text`: XML 1.0 forbids most control characters and lone surrogates. Matrix JSON
  can carry both; one of them in a stanza would make the server close the whole component
  stream, so every string from Matrix goes through this before it reaches slixmpp (which then
  escapes ``<``, ``>`` and ``&``: markup can never be injected).
"""

from __future__ import annotations

import re

from slixmpp import JID
from slixmpp.jid import InvalidJID

# XEP-0106 section 3.2: the characters escaped in a node, and their escape sequences.
_ESCAPES = {
    " ": "\\20",
    '"': "\\22",
    "&": "\\26",
    "'": "\\27",
    "/": "\\2f",
    ":": "\\3a",
    "<": "\\3c",
    ">": "\\3e",
    "@": "\\40",
}
_SEQUENCES = {v: k for k, v in _ESCAPES.items()} | {"\\5c": "\\"}
_SEQUENCE_RE = re.compile(r"\\(20|22|26|27|2f|3a|3c|3e|40|5c)", re.IGNORECASE)

#: Characters XML 1.0 does not allow at all (C0 controls but tab/newline/CR, lone surrogates,
#: U+FFFE and U+FFFF).
INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: str | None) -> str:
    """``value`` without the characters XML cannot carry (control characters, surrogates)."""
    if not value:
        return ""
    return INVALID_XML_RE.sub("", value)


def _valid_resource(value: str) -> bool:
    try:
        return bool(JID(f"n@d/{value}").resource)
    except (InvalidJID, ValueError):
        return False


def safe_nick(value: str, fallback: str = "matrix-user") -> str:
    """A MUC nick slixmpp accepts (resourceprep: Unicode 3.2, so e.g. emoji are refused) made
    from a display name: refused characters are dropped; ``fallback`` if nothing is left."""
    nick = clean_text(value).strip()[:64]
    if nick and _valid_resource(nick):
        return nick
    kept = " ".join("".join(ch for ch in nick if _valid_resource(ch)).split())
    return kept if kept and _valid_resource(kept) else fallback


def escape_node(value: str) -> str:
    """XEP-0106 escaping of a JID node (``o'brien`` -> ``o\\27brien``)."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "\\" and _SEQUENCE_RE.match(value, i):
            # A backslash is escaped only where it would read as an escape sequence.
            out.append("\\5c")
        else:
            out.append(ch)
    return "".join(out)


def unescape_node(value: str) -> str:
    """Inverse of :func:`escape_node`."""
    return _SEQUENCE_RE.sub(lambda m: _SEQUENCES[m.group(0).lower()], value)


def parse_jid(value: str) -> JID | None:
    """A JID, or None when ``value`` is not a valid one (never raises)."""
    if not isinstance(value, str) or not value or len(value) > 3071 or INVALID_XML_RE.search(value):
        return None
    try:
        jid = JID(value)
    except (InvalidJID, ValueError):
        return None
    return jid if jid.domain else None


def parse_room_jid(value: str) -> JID | None:
    """A MUC room address: a bare JID with a node (``room@conference.example.org``)."""
    jid = parse_jid(value)
    if jid is None or not jid.node or jid.resource:
        return None
    return jid


class PuppetTemplate:
    """How a Matrix user's JID looks: ``{localpart}`` and ``{server}`` with XEP-0106 escaping.

    A server name has no ``_`` in it, so the default ``{localpart}_{server}`` parses back
    unambiguously: the server is what follows the last ``_``.
    """

    def __init__(self, template: str, component: str) -> None:
        self.template = template
        self.component = component
        parts = re.split(r"(\{localpart\}|\{server\})", template)
        pattern = ""
        for p in parts:
            if p == "{localpart}":
                pattern += "(?P<localpart>.+)"
            elif p == "{server}":
                pattern += "(?P<server>[^_]+)"
            else:
                pattern += re.escape(p)
        self._regex = re.compile(f"^{pattern}$", re.DOTALL)

    def node_for(self, mxid: str) -> str:
        localpart, _, server = mxid[1:].partition(":")
        raw = self.template.replace("{localpart}", localpart).replace("{server}", server)
        return escape_node(raw)

    def jid_for(self, mxid: str) -> str:
        """The bare JID a Matrix user has on the component."""
        return f"{self.node_for(mxid).lower()}@{self.component}"

    def mxid_for(self, node: str, default_server: str) -> str | None:
        """The Matrix user id a JID node stands for, or None if it does not match."""
        m = self._regex.match(unescape_node(node))
        if not m:
            return None
        groups = m.groupdict()
        server = groups.get("server") or default_server
        return f"@{groups['localpart']}:{server}"
