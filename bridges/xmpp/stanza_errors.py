"""The error condition of a stanza, read the way a component stream needs it.

Used wherever a room or server refuses something (joins, messages, MAM queries, MUC admin),
so that every refusal is reported with the same condition and text.
"""

from __future__ import annotations

from .jid import clean_text

STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def stanza_error(stanza: object) -> tuple[str, str]:
    """(condition, text) of an error stanza as the server sent it.

    Read from the XML: on a component stream the ``<error>`` is in the component namespace,
    which slixmpp's ``stanza["error"]`` does not look in (it answers "feature-not-implemented"
    for every error, so a nick conflict would not look like one).
    """
    xml = getattr(stanza, "xml", None)
    for error in xml.findall("{*}error") if xml is not None else []:
        for el in error:
            if (
                isinstance(el.tag, str)
                and el.tag.startswith(f"{{{STANZAS_NS}}}")
                and not (el.tag.endswith("}text"))
            ):
                text = error.findtext(f"{{{STANZAS_NS}}}text")
                return el.tag.split("}", 1)[1], clean_text(text or "")[:200]
    return "undefined-condition", ""


def error_condition(stanza: object) -> str:
    """The error condition of a stanza, with the server's text if it gave one."""
    condition, text = stanza_error(stanza)
    return f"{condition} ({text})" if text else condition
