"""Specification of bridges.irc.split: byte-accurate message splitting and payload budgets."""

from __future__ import annotations

import random
import unicodedata

import pytest

from bridges.irc.lines import MAX_LINE_BYTES, build_line
from bridges.irc.split import estimate_prefix_len, max_privmsg_payload, split_message


def nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def assert_valid_chunks(chunks: list[str], max_bytes: int) -> None:
    for chunk in chunks:
        assert chunk, "empty chunk"
        assert chunk.strip(" \t"), "blank chunk"
        assert nbytes(chunk) <= max_bytes
        assert "\r" not in chunk and "\n" not in chunk


# --------------------------------------------------------------------------- split_message


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 100) == ["hello"]


def test_text_of_exactly_max_bytes_is_one_chunk() -> None:
    assert split_message("x" * 50, 50) == ["x" * 50]


def test_newlines_always_split() -> None:
    assert split_message("a\nb\r\nc\rd", 100) == ["a", "b", "c", "d"]


def test_blank_and_whitespace_only_lines_are_dropped() -> None:
    assert split_message("a\n\n   \n\t\nb\n", 100) == ["a", "b"]


def test_empty_text_gives_no_chunks() -> None:
    assert split_message("", 100) == []
    assert split_message("\n\r\n", 100) == []


def test_indentation_of_a_line_is_kept() -> None:
    assert split_message("def f():\n    return 1", 100) == ["def f():", "    return 1"]


def test_long_line_breaks_at_last_space_that_fits() -> None:
    assert split_message("hello world this is a test", 10) == ["hello", "world this", "is a test"]


def test_space_at_the_break_is_consumed() -> None:
    chunks = split_message("aaaa   bbbb", 6)
    assert chunks == ["aaaa", "bbbb"]


def test_word_longer_than_max_is_hard_split() -> None:
    assert split_message("abcdefghij", 4) == ["abcd", "efgh", "ij"]


def test_long_word_after_short_one_still_prefers_the_space() -> None:
    assert split_message("a bcdefgh", 4) == ["a", "bcde", "fgh"]


def test_no_break_space_is_not_a_break_point() -> None:
    assert split_message("ab\u00a0cd ef", 6) == ["ab\u00a0cd", "ef"]


def test_mirc_codes_are_not_treated_as_whitespace() -> None:
    # str.isspace() is true for \x1d-\x1f (italic, strikethrough, underline).
    text = "aaaa\x1fbbbb\x1dcccc"
    assert split_message(text, 6) == ["aaaa\x1fb", "bbb\x1dcc", "cc"]


def test_multibyte_characters_are_never_split() -> None:
    chunks = split_message("é" * 10, 5)  # 2 bytes each
    assert chunks == ["éé", "éé", "éé", "éé", "éé"]
    assert "".join(chunks) == "é" * 10


def test_four_byte_characters_are_never_split() -> None:
    chunks = split_message("😀" * 5, 7)
    assert chunks == ["😀"] * 5


def test_combining_mark_stays_with_its_base() -> None:
    text = "aaaa" + "e\u0301" + "bbb"
    chunks = split_message(text, 5)
    assert chunks[0] == "aaaa"
    assert chunks[1].startswith("e\u0301")
    assert "".join(chunks) == text


def test_zwj_emoji_sequence_is_not_split() -> None:
    family = "👨\u200d👩\u200d👧"  # 18 bytes
    chunks = split_message("ab" + family, 19)
    assert chunks == ["ab", family]


def test_skin_tone_modifier_stays_with_its_emoji() -> None:
    chunks = split_message("abc👍🏽", 8)
    assert chunks == ["abc", "👍🏽"]


def test_flag_pair_is_not_split() -> None:
    flags = "🇫🇷🇩🇪"  # two flags, 8 bytes each; 13 bytes would fit "x" and 1.5 flags
    chunks = split_message("x" + flags, 13)
    assert chunks == ["x🇫🇷", "🇩🇪"]


def test_grapheme_larger_than_max_is_split_at_code_points() -> None:
    zalgo = "a" + "\u0301" * 20  # 41 bytes
    chunks = split_message(zalgo, 10)
    assert "".join(chunks) == zalgo
    assert_valid_chunks(chunks, 10)


def test_colour_code_is_not_split_from_its_digits() -> None:
    text = "abcde\x0304,12red"
    chunks = split_message(text, 8)
    assert "".join(chunks) == text
    assert any(chunk.startswith("\x0304,12") for chunk in chunks)


def test_hex_colour_code_is_not_split() -> None:
    text = "abcd\x04FF00FF,00FF00xyz"
    chunks = split_message(text, 16)
    assert chunks == ["abcd", "\x04FF00FF,00FF00xy", "z"]


def test_lone_surrogates_are_replaced_not_crashing() -> None:
    chunks = split_message("a\ud800b", 10)
    assert chunks == ["a\ufffdb"]
    assert all(chunk.encode("utf-8") for chunk in chunks)


def test_surrogate_pair_is_joined_into_one_character() -> None:
    assert split_message("\ud83d\ude00", 10) == ["😀"]


def test_tiny_max_bytes_is_rejected() -> None:
    with pytest.raises(ValueError):
        split_message("abc", 3)


def test_chunks_rejoin_to_the_original_words() -> None:
    rng = random.Random(512)
    words = ["a", "bb", "ccc", "naïve", "日本語", "😀", "x" * 30, "e\u0301", "\x02b\x02"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 60)))
        max_bytes = rng.randint(4, 80)
        chunks = split_message(text, max_bytes)
        assert_valid_chunks(chunks, max_bytes)
        assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_random_unicode_never_produces_invalid_chunks() -> None:
    rng = random.Random(2024)
    for _ in range(300):
        text = "".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(rng.randint(0, 80)))
        text = "".join(ch for ch in text if not 0xD800 <= ord(ch) <= 0xDFFF)
        max_bytes = rng.randint(4, 40)
        chunks = split_message(text, max_bytes)
        assert_valid_chunks(chunks, max_bytes)


def test_split_never_separates_combining_marks_when_avoidable() -> None:
    rng = random.Random(77)
    for _ in range(300):
        text = "".join(rng.choice(["a", "b", "e\u0301", "o\u0308\u0323"]) for _ in range(50))
        for chunk in split_message(text, rng.randint(6, 30)):
            assert not unicodedata.combining(chunk[0])


def test_huge_text_is_split_quickly_and_completely() -> None:
    text = ("lorem ipsum dolor sit amet " * 4000).strip()  # ~108 KB
    chunks = split_message(text, 400)
    assert_valid_chunks(chunks, 400)
    assert " ".join(chunks) == text


def test_huge_unbroken_text_is_split_completely() -> None:
    text = "é" * 50_000
    chunks = split_message(text, 401)
    assert "".join(chunks) == text
    assert all(nbytes(chunk) == 400 for chunk in chunks[:-1])


# --------------------------------------------------------------------------- payload budget


def test_estimate_prefix_len_counts_colon_bang_at_and_space() -> None:
    assert estimate_prefix_len("nick", "user", "host") == len(":nick!user@host ")


def test_estimate_prefix_len_counts_bytes() -> None:
    assert estimate_prefix_len("n", "u", "hösт") == len(":n!u@hösт ".encode())


def test_estimate_prefix_len_assumes_long_user_and_host_when_unknown() -> None:
    assert estimate_prefix_len("nick") == len(":nick!") + 10 + 1 + 63 + 1


def test_max_privmsg_payload_fills_the_line_exactly() -> None:
    source = ":nick!user@host.example "
    payload = max_privmsg_payload("#chan", len(source))
    relayed = f"{source}PRIVMSG #chan :{'x' * payload}\r\n"
    assert len(relayed.encode()) == MAX_LINE_BYTES


def test_max_privmsg_payload_counts_target_bytes() -> None:
    ascii_budget = max_privmsg_payload("#ab", 10)
    assert max_privmsg_payload("#ä", 10) == ascii_budget  # "ä" is 2 bytes, like "ab"


def test_max_privmsg_payload_subtracts_tags_len() -> None:
    assert max_privmsg_payload("#c", 20, tags_len=30) == max_privmsg_payload("#c", 20) - 30


def test_max_privmsg_payload_supports_notice() -> None:
    assert max_privmsg_payload("#c", 20, command="NOTICE") == max_privmsg_payload("#c", 20) + 1


def test_max_privmsg_payload_without_room_is_an_error() -> None:
    with pytest.raises(ValueError):
        max_privmsg_payload("#" + "c" * 500, 20)


def test_split_chunks_fit_in_built_lines() -> None:
    prefix_len = estimate_prefix_len("bridge_user")
    budget = max_privmsg_payload("#channel", prefix_len)
    text = "ünïcödé wörds 😀 " * 200
    for chunk in split_message(text, budget):
        line = build_line("PRIVMSG", "#channel", chunk)
        assert len(line) + prefix_len <= MAX_LINE_BYTES
