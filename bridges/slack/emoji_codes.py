"""Slack emoji shortcodes <-> unicode (Slack's names first, then the ``emoji`` package's).

Slack names emoji as iamcal/emoji-data does (``+1``, ``flag-de``, ``man-woman-boy``,
``+1::skin-tone-3``); the ``emoji`` package knows most of them as aliases. Custom workspace
emoji have no unicode: :func:`emoji_unicode` answers None and the caller keeps ``:name:``.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["emoji_name", "emoji_unicode"]


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
