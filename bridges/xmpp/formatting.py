"""Message formatting: Matrix HTML <-> XEP-0393 styling and XEP-0071 XHTML-IM.

Matrix -> XMPP: the HTML of a Matrix message becomes a plain body with XEP-0393 styling
(``*strong*``, ``_emphasis_``, ``~strike~``, `` `code` ``, code blocks and ``>`` quotes), which
every current client renders, plus an XHTML-IM body for the clients that still read it. The
XHTML-IM tree is built element by element from an allow-list: nothing from Matrix is ever
pasted into XML as text.

XMPP -> Matrix: XHTML-IM (allow-listed) or, failing that, XEP-0393 styling in the body becomes
``formatted_body``; every text node is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from xml.etree import ElementTree as ET

from .jid import clean_text

XHTML_NS = "http://www.w3.org/1999/xhtml"
_SAFE_SCHEMES = ("http://", "https://", "mailto:", "xmpp:", "geo:")
_VOID = {"br", "img", "hr"}
_BLOCKS = {
    "p",
    "div",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "tr",
}


# ---------------------------------------------------------------------------------------------
# A forgiving HTML tree (Matrix HTML is not always well formed).


@dataclass
class Node:
    tag: str  # "" for the root, "#text" for text
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text: str = ""


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag.lower(), {k.lower(): v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if node.tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag.lower(), {k.lower(): v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", text=data))


def parse_html(source: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(clean_text(source))
    builder.close()
    return builder.root


# ---------------------------------------------------------------------------------------------
# Matrix HTML -> XEP-0393 styled plain text


_SPAN_MARKS = {
    "b": "*",
    "strong": "*",
    "i": "_",
    "em": "_",
    "s": "~",
    "del": "~",
    "strike": "~",
    "code": "`",
}


def _wrap(mark: str, inner: str) -> str:
    # A directive must touch non-space text on its inside (XEP-0393 section 6.2).
    stripped = inner.strip()
    if not stripped or "\n" in stripped:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()) :]
    return f"{lead}{mark}{stripped}{mark}{trail}"


def _styled(node: Node, ordered: list[int] | None = None) -> str:
    if node.tag == "#text":
        return node.text
    if node.tag in ("mx-reply", "script", "style", "head"):
        return ""
    if node.tag == "br":
        return "\n"
    if node.tag == "hr":
        return "\n----\n"
    if node.tag == "img":
        return node.attrs.get("alt") or node.attrs.get("title") or ""
    if node.tag == "pre":
        code = "".join(_plain(c) for c in node.children).strip("\n")
        return f"\n```\n{code}\n```\n"
    if node.tag == "code":
        return _wrap("`", "".join(_plain(c) for c in node.children))
    if node.tag in ("ol", "ul"):
        counter = [int(node.attrs.get("start", "1") or 1) if node.tag == "ol" else 0]
        items = [_styled(c, counter if node.tag == "ol" else None) for c in node.children]
        return "\n" + "".join(items).strip("\n") + "\n"
    inner = "".join(_styled(c) for c in node.children)
    if node.tag == "li":
        if ordered is not None:
            prefix = f"{ordered[0]}. "
            ordered[0] += 1
        else:
            prefix = "• "
        return prefix + inner.strip() + "\n"
    if node.tag in _SPAN_MARKS:
        return _wrap(_SPAN_MARKS[node.tag], inner)
    if node.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return "\n" + _wrap("*", inner.strip()) + "\n"
    if node.tag == "blockquote":
        lines = inner.strip("\n").split("\n")
        return "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"
    if node.tag == "a":
        href = node.attrs.get("href", "")
        text = inner.strip()
        if href.startswith("https://matrix.to/#/") or not href or text == href:
            return inner
        if href.startswith("mailto:") and text == href[len("mailto:") :]:
            return inner
        return f"{inner} <{href}>"
    if node.tag in _BLOCKS:
        return "\n" + inner.strip("\n") + "\n"
    return inner


def _plain(node: Node) -> str:
    if node.tag == "#text":
        return node.text
    if node.tag == "br":
        return "\n"
    return "".join(_plain(c) for c in node.children)


def html_to_styling(source: str) -> str:
    """Matrix ``formatted_body`` as XEP-0393 styled text."""
    text = _styled(parse_html(source))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


# ---------------------------------------------------------------------------------------------
# Matrix HTML -> XHTML-IM body element (allow-listed)


_XHTML_MAP = {
    "b": "strong",
    "strong": "strong",
    "i": "em",
    "em": "em",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "br": "br",
    "p": "p",
    "ul": "ul",
    "ol": "ol",
    "li": "li",
    "a": "a",
    "span": "span",
    "cite": "cite",
    "h1": "strong",
    "h2": "strong",
    "h3": "strong",
    "h4": "strong",
    "h5": "strong",
    "h6": "strong",
    "div": "p",
}
_XHTML_STYLE = {
    "s": "text-decoration: line-through",
    "del": "text-decoration: line-through",
    "strike": "text-decoration: line-through",
    "u": "text-decoration: underline",
}


def _append_text(parent: ET.Element, text: str) -> None:
    if not text:
        return
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _to_xhtml(node: Node, parent: ET.Element) -> None:
    for child in node.children:
        if child.tag == "#text":
            _append_text(parent, child.text)
            continue
        if child.tag in ("mx-reply", "script", "style", "head"):
            continue
        tag = _XHTML_MAP.get(child.tag)
        style = _XHTML_STYLE.get(child.tag)
        if style:
            tag = "span"
        if tag is None:  # unknown element: keep its content only
            _to_xhtml(child, parent)
            continue
        el = ET.SubElement(parent, f"{{{XHTML_NS}}}{tag}")
        if style:
            el.set("style", style)
        if tag == "a":
            href = child.attrs.get("href", "")
            if href.startswith(_SAFE_SCHEMES):
                el.set("href", href)
        _to_xhtml(child, el)


def html_to_xhtml(source: str) -> ET.Element:
    """An XHTML-IM ``<body xmlns='http://www.w3.org/1999/xhtml'>`` for Matrix HTML."""
    body = ET.Element(f"{{{XHTML_NS}}}body")
    _to_xhtml(parse_html(source), body)
    return body


# ---------------------------------------------------------------------------------------------
# XHTML-IM -> Matrix HTML (allow-listed)


_HTML_ALLOWED = {
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "br",
    "p",
    "ul",
    "ol",
    "li",
    "a",
    "span",
    "cite",
    "b",
    "i",
    "u",
    "s",
    "del",
}


def _from_xhtml(el: ET.Element, out: list[str]) -> None:
    tag = el.tag.split("}", 1)[-1].lower() if isinstance(el.tag, str) else ""
    keep = tag in _HTML_ALLOWED
    if tag == "span":
        style = (el.get("style") or "").replace(" ", "").lower()
        tag = "del" if "line-through" in style else "u" if "underline" in style else ""
        keep = bool(tag)
    if keep:
        if tag == "a":
            href = el.get("href") or ""
            out.append(
                f'<a href="{html.escape(href)}">' if href.startswith(_SAFE_SCHEMES) else "<a>"
            )
        elif tag == "br":
            out.append("<br/>")
        else:
            out.append(f"<{tag}>")
    if el.text:
        out.append(html.escape(clean_text(el.text), quote=False))
    for child in el:
        _from_xhtml(child, out)
    if keep and tag != "br":
        out.append(f"</{tag}>")
    if el.tail:
        out.append(html.escape(clean_text(el.tail), quote=False))


def xhtml_to_html(body: ET.Element) -> str:
    """The content of an XHTML-IM ``<body>`` as safe Matrix HTML."""
    out: list[str] = []
    if body.text:
        out.append(html.escape(clean_text(body.text), quote=False))
    for child in body:
        _from_xhtml(child, out)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# XEP-0393 styling -> Matrix HTML


_SPAN_TAGS = {"*": "strong", "_": "em", "~": "del", "`": "code"}


def _spans(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        opening = ch in _SPAN_TAGS and (
            i == 0 or text[i - 1].isspace() or text[i - 1] in _SPAN_TAGS
        )
        if opening and i + 1 < n and not text[i + 1].isspace():
            j = i + 2
            while j < n:
                if text[j] == ch and not text[j - 1].isspace():
                    break
                j += 1
            if j < n:
                inner = text[i + 1 : j]
                rendered = html.escape(inner, quote=False) if ch == "`" else _spans(inner)
                out.append(f"<{_SPAN_TAGS[ch]}>{rendered}</{_SPAN_TAGS[ch]}>")
                i = j + 1
                continue
        out.append(html.escape(ch, quote=False))
        i += 1
    return "".join(out)


def _blocks(lines: list[str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = i + 1
            while end < len(lines) and lines[end] != "```":
                end += 1
            code = "\n".join(lines[i + 1 : end])
            out.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
            i = end + 1
            continue
        if line.startswith(">"):
            quoted = []
            while i < len(lines) and lines[i].startswith(">"):
                rest = lines[i][1:]
                quoted.append(rest[1:] if rest.startswith(" ") else rest)
                i += 1
            out.append(f"<blockquote>{_blocks(quoted)}</blockquote>")
            continue
        out.append(_spans(line) + ("<br/>" if i + 1 < len(lines) else ""))
        i += 1
    return "".join(out)


_STYLING_HINT = re.compile(r"(^|[\s*_~`])[*_~`]\S|^>|^```", re.MULTILINE)


def styling_to_html(body: str) -> str | None:
    """Matrix HTML for a body with XEP-0393 styling, or None when it has no styling."""
    if not _STYLING_HINT.search(body):
        return None
    rendered = _blocks(body.split("\n"))
    plain = html.escape(body, quote=False).replace("\n", "<br/>")
    return None if rendered == plain else rendered
