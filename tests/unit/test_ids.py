"""Remote id <-> Matrix localpart escaping: valid, reversible, injective."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from bridgekit.contract.ids import (
    escape_localpart,
    localpart_of,
    server_of,
    template_regex,
    unescape_localpart,
)

LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/]*$")

EXAMPLES = [
    "",
    "alice",
    "Alice",
    "ALICE",
    "U024BE7LH",
    "_",
    "__",
    "_a",
    "a_",
    "=",
    "==",
    "=41",
    "_A",
    "a_b_C",
    "[nick]",
    "nick|away",
    "user@example.com/resource",
    "héllo",
    "日本語",
    "🎉",
    "tab\there",
    "new\nline",
    "nul\x00byte",
    " spaces ",
    "100%",
    "a.b-c/d",
    "@mxid:server",
    "#alias:server",
    "\u00df\u1e9e",
    "z" * 200,
]


def generated_ids(count: int = 3000, seed: int = 1234) -> set[str]:
    """Every short string over a tricky alphabet, plus random longer ones."""
    alphabet = ["a", "z", "A", "Z", "0", "_", "=", "-", ".", "/", "[", " ", "é", "😀", "4", "1"]
    found = {"".join(t) for n in range(3) for t in itertools.product(alphabet, repeat=n)}
    rng = random.Random(seed)
    pool = alphabet + ["ß", "\x00", "%", ":", "@", "x", "Q"]
    while len(found) < count + len(alphabet) ** 2:
        found.add("".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
    return found


# -- escaping --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", EXAMPLES, ids=repr)
def test_escape_then_unescape_gives_back_the_original(value: str) -> None:
    assert unescape_localpart(escape_localpart(value)) == value


def test_round_trip_holds_over_a_generated_set() -> None:
    failures = [v for v in generated_ids() if unescape_localpart(escape_localpart(v)) != v]
    assert failures == []


def test_escaped_values_use_only_localpart_characters() -> None:
    values = generated_ids() | set(EXAMPLES)
    bad = [v for v in values if not LOCALPART_RE.match(escape_localpart(v))]
    assert bad == []


def test_escaping_is_injective_over_a_generated_set() -> None:
    values = generated_ids() | set(EXAMPLES)
    escaped: dict[str, str] = {}
    collisions = []
    for value in values:
        out = escape_localpart(value)
        if out in escaped:
            collisions.append((escaped[out], value))
        escaped[out] = value
    assert collisions == []
    assert len(escaped) == len(values)


def test_upper_and_lower_case_ids_get_different_localparts() -> None:
    assert escape_localpart("Alice") != escape_localpart("alice")


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("alice", "alice"),
        ("a.b-c/9", "a.b-c/9"),
        ("Alice", "_alice"),
        ("a_b", "a__b"),
        ("=", "=3d"),
        (" ", "=20"),
        ("é", "=c3=a9"),
        ("", ""),
    ],
)
def test_escape_follows_the_documented_scheme(value: str, escaped: str) -> None:
    assert escape_localpart(value) == escaped


def test_plain_lowercase_ids_are_left_alone() -> None:
    assert escape_localpart("bob.smith-2/x") == "bob.smith-2/x"


# -- unescaping invalid input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "_",  # dangling underscore
        "a_",  # dangling underscore at the end
        "_1",  # underscore must be followed by a letter or underscore
        "_.",
        "=",  # incomplete hex escape
        "=4",
        "=zz",  # not hex
        "=4G",
        "=4A",  # upper-case hex is never produced
        "A",  # upper case is not a localpart character
        "a b",  # space is not a localpart character
        "=c3",  # truncated UTF-8 sequence
        "=ff",  # not UTF-8 at all
        "=61",  # "a" escaped although it is safe: not what escape produces
        "=41",  # "A" is escaped as "_a", never as "=41"
        "=5f",  # "_" is escaped as "__"
        "é",
    ],
)
def test_unescape_rejects_what_escape_never_produces(value: str) -> None:
    assert unescape_localpart(value) is None


def test_unescape_of_the_empty_string_is_the_empty_string() -> None:
    assert unescape_localpart("") == ""


# -- templates -------------------------------------------------------------------------------


def test_template_regex_captures_the_id_field() -> None:
    m = template_regex("_fake_{id}").match("_fake_alice")
    assert m is not None
    assert m.group("id") == "alice"


def test_template_regex_is_anchored_at_both_ends() -> None:
    regex = template_regex("_fake_{id}")
    assert regex.match("x_fake_alice") is None
    assert regex.match("_fake_") is None
    assert regex.match("_fake_alice") is not None
    assert regex.match("_fake_alice").group("id") == "alice"


def test_template_regex_treats_literal_parts_literally() -> None:
    regex = template_regex("bot.{id}+x")
    assert regex.match("bot.alice+x") is not None
    assert regex.match("botXalice+x") is None
    assert regex.match("bot.alicex") is None


def test_template_regex_has_one_group_per_field() -> None:
    m = template_regex("_irc_{server}_{nick}").match("_irc_libera_alice")
    assert m is not None
    assert m.groupdict() == {"server": "libera", "nick": "alice"}


def test_template_regex_recovers_escaped_ids_through_unescape() -> None:
    remote = "Weird_Nick[1]"
    localpart = "_fake_" + escape_localpart(remote)
    m = template_regex("_fake_{id}").match(localpart)
    assert m is not None
    assert unescape_localpart(m.group("id")) == remote


# -- mxid helpers ----------------------------------------------------------------------------


def test_localpart_and_server_of_an_mxid() -> None:
    assert localpart_of("@alice:example.org") == "alice"
    assert server_of("@alice:example.org:8448") == "example.org:8448"
    assert server_of("@alice") == ""
