"""mIRC formatting codes: the control characters, the 99-colour palette and a run's style.

Shared by both directions of the Matrix <-> IRC formatting translation
(``mirc_to_html`` and ``html_to_mirc``), so that each reads and writes the
same codes and colours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BOLD",
    "CODE_RE",
    "COLOUR",
    "HEX_COLOUR",
    "IRC_PALETTE",
    "ITALIC",
    "MONOSPACE",
    "PLAIN",
    "RESET",
    "REVERSE",
    "STRIKETHROUGH",
    "TOGGLES",
    "UNDERLINE",
    "Style",
    "palette_colour",
    "strip_irc_formatting",
]

BOLD = "\x02"
COLOUR = "\x03"
HEX_COLOUR = "\x04"
RESET = "\x0f"
MONOSPACE = "\x11"
REVERSE = "\x16"
ITALIC = "\x1d"
STRIKETHROUGH = "\x1e"
UNDERLINE = "\x1f"

# The 16 classic mIRC colours followed by the 83 "extended" ones (16-98), as
# given by the modern IRC formatting documentation.  99 means "default".
IRC_PALETTE: tuple[str, ...] = tuple(
    "#" + c
    for c in (
        "ffffff 000000 00007f 009300 ff0000 7f0000 9c009c fc7f00 "
        "ffff00 00fc00 009393 00ffff 0000fc ff00ff 7f7f7f d2d2d2 "
        "470000 472100 474700 324700 004700 00472c 004747 002747 000047 2e0047 470047 47002a "
        "740000 743a00 747400 517400 007400 007449 007474 004074 000074 4b0074 740074 740045 "
        "b50000 b56300 b5b500 7db500 00b500 00b571 00b5b5 0063b5 0000b5 7500b5 b500b5 b5006b "
        "ff0000 ff8c00 ffff00 b2ff00 00ff00 00ffa0 00ffff 008cff 0000ff a500ff ff00ff ff0098 "
        "ff5959 ffb459 ffff71 cfff60 6fff6f 65ffc9 6dffff 59b4ff 5959ff c459ff ff66ff ff59bc "
        "ff9c9c ffd39c ffff9c e2ff9c 9cff9c 9cffdb 9cffff 9cd3ff 9c9cff dc9cff ff9cff ff94d3 "
        "000000 131313 282828 363636 4d4d4d 656565 818181 9f9f9f bcbcbc e2e2e2 ffffff"
    ).split()
)
assert len(IRC_PALETTE) == 99

CODE_RE = re.compile(
    r"\x03(?:([0-9]{1,2})(?:,([0-9]{1,2}))?)?"
    r"|\x04(?:([0-9A-Fa-f]{6})(?:,([0-9A-Fa-f]{6}))?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)

TOGGLES = (
    ("bold", BOLD),
    ("italic", ITALIC),
    ("underline", UNDERLINE),
    ("strike", STRIKETHROUGH),
    ("mono", MONOSPACE),
)


@dataclass(frozen=True)
class Style:
    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    mono: bool = False
    fg: str | None = None  # "#rrggbb"
    bg: str | None = None


PLAIN = Style()


def strip_irc_formatting(text: str) -> str:
    """Remove every mIRC formatting code (including colour parameters) from ``text``."""
    return CODE_RE.sub("", text)


def palette_colour(code: str | None) -> str | None:
    if code is None:
        return None
    index = int(code)
    return IRC_PALETTE[index] if index < len(IRC_PALETTE) else None
