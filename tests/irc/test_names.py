"""Specification of bridges.irc.names: strict IRC names and a bijective localpart escape."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from bridges.irc.names import (
    InvalidNameError,
    casefold,
    escape_localpart,
    is_channel,
    nick_variants,
    sanitize_nick,
    unescape_localpart,
    validate_channel,
    validate_channel_key,
    validate_nick,
)

LOCALPART_RE = re.compile(r"[a-z0-9._=/-]*")

# --------------------------------------------------------------------------- casefold


def test_rfc1459_folds_ascii_letters() -> None:
    assert casefold("NiCk") == "nick"


def test_rfc1459_treats_brackets_backslash_and_tilde_as_upper_case() -> None:
    assert casefold("[]\\~") == "{}|^"


def test_rfc1459_is_the_default() -> None:
    assert casefold("A[~") == casefold("A[~", "rfc1459") == "a{^"


def test_strict_rfc1459_does_not_fold_tilde() -> None:
    assert casefold("[]\\~", "strict-rfc1459") == "{}|~"


def test_ascii_folds_only_letters() -> None:
    assert casefold("ABC[]\\~", "ascii") == "abc[]\\~"


def test_casefold_leaves_non_ascii_alone() -> None:
    # The server does not fold these, so neither may we ("İ".lower() even changes length).
    assert casefold("ÄİΣ") == "ÄİΣ"


def test_casefold_preserves_length() -> None:
    text = "İstanbul [Straße] ~ΣΑΣ"
    assert len(casefold(text)) == len(text)


def test_unknown_casemapping_is_rejected() -> None:
    with pytest.raises(ValueError):
        casefold("x", "rfc7613")


def test_casemapping_name_is_case_insensitive() -> None:
    assert casefold("A~", "RFC1459") == "a^"


# --------------------------------------------------------------------------- channels


@pytest.mark.parametrize("name", ["#chan", "&local", "#", "#ä"])
def test_is_channel_checks_prefix(name: str) -> None:
    assert is_channel(name)


@pytest.mark.parametrize("name", ["", "nick", "!chan", "+chan"])
def test_is_channel_false_without_prefix(name: str) -> None:
    assert not is_channel(name)


def test_is_channel_honours_custom_chantypes() -> None:
    assert is_channel("!chan", chantypes="!#")
    assert not is_channel("&chan", chantypes="#")


@pytest.mark.parametrize("name", ["#chan", "&chan", "#Chan-Name_1", "#ünïcödé", "#a.b/c", "##"])
def test_valid_channels_are_returned_unchanged(name: str) -> None:
    assert validate_channel(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("chan", "no prefix"),
        ("#", "empty body"),
        ("#a b", "space"),
        ("#a,#b", "comma"),
        ("#a\x07b", "bell"),
        ("#a\rb", "CR"),
        ("#a\nb", "LF"),
        ("#a\r\nJOIN #x", "CRLF injection"),
        ("#a\0b", "NUL"),
        ("#a\x02b", "mIRC bold"),
        ("#a\x1fb", "mIRC underline"),
        ("#a\x7fb", "DEL"),
        ("#a\x85b", "C1 control"),
        ("#a:b", "colon"),
        ("#a\u200bb", "zero-width space"),
        ("#a\u202eb", "bidi override"),
        ("#a\u00a0b", "no-break space"),
        ("#a\u2028b", "line separator"),
        ("#a\ud800b", "lone surrogate"),
        ("#\ue000", "private use"),
    ],
)
def test_invalid_channels_are_rejected(name: str, reason: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_channel(name)


def test_channel_length_limit_counts_bytes() -> None:
    assert validate_channel("#" + "a" * 63) == "#" + "a" * 63
    with pytest.raises(InvalidNameError):
        validate_channel("#" + "a" * 64)
    with pytest.raises(InvalidNameError):
        validate_channel("#" + "é" * 32)  # 65 bytes


def test_channel_custom_limits() -> None:
    assert validate_channel("!abc", chantypes="!", max_len=4) == "!abc"
    with pytest.raises(InvalidNameError):
        validate_channel("#abc", chantypes="!")
    with pytest.raises(InvalidNameError):
        validate_channel("#abcd", max_len=4)


def test_huge_channel_name_is_rejected() -> None:
    with pytest.raises(InvalidNameError):
        validate_channel("#" + "a" * 1_000_000)


def test_invalid_name_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_channel("nochan")


# --------------------------------------------------------------------------- nicks


@pytest.mark.parametrize(
    "nick", ["alice", "Alice", "a1", "[bot]", "_under", "`tick", "^caret", "{x}", "a|b", "a-b", "x"]
)
def test_valid_nicks_are_returned_unchanged(nick: str) -> None:
    assert validate_nick(nick) == nick


@pytest.mark.parametrize(
    "nick",
    [
        "",
        "1abc",
        "-abc",
        "a b",
        "a,b",
        "a!b",
        "a@b",
        "#chan",
        ":nick",
        "nick\r\nQUIT",
        "nick\n",
        "ni\0ck",
        "nïck",
        "a.b",
        "a*b",
    ],
)
def test_invalid_nicks_are_rejected(nick: str) -> None:
    with pytest.raises(InvalidNameError):
        validate_nick(nick)


def test_nick_length_limit() -> None:
    assert validate_nick("a" * 30) == "a" * 30
    with pytest.raises(InvalidNameError):
        validate_nick("a" * 31)
    assert validate_nick("abcd", max_len=4) == "abcd"
    with pytest.raises(InvalidNameError):
        validate_nick("abcde", max_len=4)


# --------------------------------------------------------------------------- sanitize_nick


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("alice", "alice"),
        ("Alice Smith", "Alice_Smith"),
        ("José", "Jose"),
        ("Ångström", "Angstrom"),
        ("bob!!!", "bob"),
        ("  spaced  out  ", "spaced_out"),
        ("123abc", "_123abc"),
        ("-dash", "_-dash"),
        ("[bot] x", "[bot]_x"),
        ("a@b:c.d", "a_b_c_d"),
    ],
)
def test_sanitize_nick_examples(wanted: str, expected: str) -> None:
    assert sanitize_nick(wanted) == expected


@pytest.mark.parametrize("wanted", ["", "   ", "😀😀", "日本語", "!!!", "\r\n\0"])
def test_sanitize_nick_falls_back_when_nothing_usable_remains(wanted: str) -> None:
    assert sanitize_nick(wanted) == "matrixuser"


def test_sanitize_nick_truncates_to_max_len() -> None:
    assert sanitize_nick("a" * 100, max_len=9) == "a" * 9
    assert sanitize_nick("", max_len=4) == "matr"


def test_sanitize_nick_strips_injection_attempts() -> None:
    nick = sanitize_nick("evil\r\nQUIT :bye")
    assert validate_nick(nick) == nick
    assert "\r" not in nick and "\n" not in nick and " " not in nick


def test_sanitize_nick_always_returns_a_valid_nick() -> None:
    rng = random.Random(2812)
    pool = "aZ09 _-[]\\`^{|}!@#:,.\r\n\0é😀İ\u200b\u0301"
    for _ in range(2000):
        wanted = "".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        max_len = rng.randint(1, 30)
        nick = sanitize_nick(wanted, max_len=max_len)
        assert validate_nick(nick, max_len=max_len) == nick


def test_sanitize_nick_rejects_nonpositive_max_len() -> None:
    with pytest.raises(ValueError):
        sanitize_nick("alice", max_len=0)


# --------------------------------------------------------------------------- nick_variants


def test_nick_variants_order() -> None:
    variants = list(itertools.islice(nick_variants("alice", 30), 5))
    assert variants == ["alice_", "alice__", "alice1", "alice2", "alice3"]


def test_nick_variants_truncate_to_fit_max_len() -> None:
    variants = list(itertools.islice(nick_variants("abcdef", 6), 4))
    assert variants == ["abcde_", "abcd__", "abcde1", "abcde2"]
    assert all(len(v) <= 6 for v in variants)


def test_nick_variants_are_distinct_valid_and_differ_from_original() -> None:
    for nick, max_len in [("ab_c", 4), ("ab1c", 4), ("x", 3), ("[a]", 5), ("zz", 2)]:
        variants = list(itertools.islice(nick_variants(nick, max_len), 200))
        assert len(variants) == len(set(variants))
        assert nick not in variants
        for variant in variants:
            assert validate_nick(variant, max_len) == variant


def test_nick_variants_stop_when_no_room_remains() -> None:
    assert list(nick_variants("ab", 2)) == ["a_"] + [f"a{i}" for i in range(1, 10)]


def test_nick_variants_reject_invalid_base() -> None:
    with pytest.raises(InvalidNameError):
        next(nick_variants("1bad", 30))


# --------------------------------------------------------------------------- localparts


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("alice", "alice"),
        ("Alice", "_alice"),
        ("a_b", "a__b"),
        ("#chan", "=23chan"),
        ("a=b", "a=3db"),
        ("x.y-z/w", "x.y-z/w"),
        ("a b", "a=20b"),
        ("é", "=c3=a9"),
        ("[Bot]", "=5b_bot=5d"),
        ("", ""),
    ],
)
def test_escape_localpart_examples(raw: str, escaped: str) -> None:
    assert escape_localpart(raw) == escaped
    assert unescape_localpart(escaped) == raw


def test_escaped_localpart_uses_only_the_matrix_alphabet() -> None:
    assert LOCALPART_RE.fullmatch(escape_localpart("ÀÉ #&!@:[]{}|\\^~`\r\n\0 😀 İ"))


def test_case_differences_stay_distinct() -> None:
    # IRC nicks are case-insensitive, but display case must survive a round trip.
    assert escape_localpart("Bob") != escape_localpart("bob")


def _random_strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    pools = [
        "abcXYZ_=-./09",
        "#&!@:[]{}|\\^~` \r\n\0\x02\x03",
        "éÉßİıΣσς日本語😀👍🏽\u200b\u0301\ufeff",
    ]
    out = []
    for _ in range(count):
        length = rng.randint(0, 24)
        chars = []
        for _ in range(length):
            if rng.random() < 0.15:
                code = rng.randint(0, 0x10FFFF)
                if 0xD800 <= code <= 0xDFFF:
                    code = 0xFFFD
                chars.append(chr(code))
            else:
                chars.append(rng.choice(rng.choice(pools)))
        out.append("".join(chars))
    return out


def test_localpart_escape_round_trips_random_strings() -> None:
    for value in _random_strings(seed=1, count=2000):
        escaped = escape_localpart(value)
        assert LOCALPART_RE.fullmatch(escaped), value
        assert unescape_localpart(escaped) == value


def test_localpart_escape_is_injective() -> None:
    values = set(_random_strings(seed=2, count=5000))
    values |= {"a", "A", "_a", "_A", "__", "_", "=", "=3d", "=23", "#", "a_b", "a__b", "A_b"}
    escaped = {escape_localpart(v) for v in values}
    assert len(escaped) == len(values)


def test_localpart_escape_is_injective_exhaustively_for_short_ascii() -> None:
    alphabet = "aA_=3d#"
    seen: dict[str, str] = {}
    for length in range(4):
        for chars in itertools.product(alphabet, repeat=length):
            value = "".join(chars)
            escaped = escape_localpart(value)
            assert seen.setdefault(escaped, value) == value


@pytest.mark.parametrize(
    "bad",
    [
        "=61",  # non-canonical spelling of "a"
        "=2F",  # upper-case hex is not in the alphabet
        "=2f",  # "/" is passed through, so "=2f" is non-canonical
        "=5f",  # "_" must be "__"
        "_1",  # "_" must be followed by a letter or "_"
        "_",  # dangling escape
        "=",  # dangling escape
        "=4",  # short escape
        "=zz",  # not hex
        "=c3",  # truncated UTF-8
        "=ff",  # invalid UTF-8
        "Abc",  # upper case is never produced
        "a b",  # space is not in the alphabet
        "a+b",  # not in the historical alphabet either
        "a\nb",
    ],
)
def test_unescape_rejects_anything_escape_could_not_produce(bad: str) -> None:
    with pytest.raises(InvalidNameError):
        unescape_localpart(bad)


def test_unescape_never_maps_two_localparts_to_one_name() -> None:
    rng = random.Random(3)
    alphabet = "a_=3dfc/9"
    decoded: dict[str, str] = {}
    for _ in range(20000):
        candidate = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        try:
            name = unescape_localpart(candidate)
        except InvalidNameError:
            continue
        assert decoded.setdefault(name, candidate) == candidate


def test_escape_rejects_lone_surrogates() -> None:
    with pytest.raises(InvalidNameError):
        escape_localpart("a\ud800")


def test_a_channel_key_is_one_join_parameter_or_refused():
    for ok in ("sesame", "door-2", "p@ss:w0rd", "ключ"):
        assert validate_channel_key(ok) == ok
    for bad in ("", "two words", "a,b", ":lead", "x\rQUIT", "x\nJOIN #evil", "nul\0", "x" * 65):
        with pytest.raises(InvalidNameError):
            validate_channel_key(bad)
