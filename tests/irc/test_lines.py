"""Specification of bridges.irc.lines: safe construction and robust parsing of IRC lines."""

from __future__ import annotations

import random

import pytest

from bridges.irc.lines import (
    MAX_LINE_BYTES,
    LineTooLongError,
    Message,
    ParseError,
    UnsafeLineError,
    build_line,
    escape_tag_value,
    parse_line,
    unescape_tag_value,
)

FRAMING_CHARS = ["\r", "\n", "\0", "\r\n"]

# --------------------------------------------------------------------------- build_line


def test_simple_command_is_terminated_with_crlf() -> None:
    assert build_line("PING", "token") == b"PING token\r\n"


def test_command_without_params() -> None:
    assert build_line("QUIT") == b"QUIT\r\n"


def test_numeric_command_is_accepted() -> None:
    assert build_line("001", "nick", "Welcome") == b"001 nick Welcome\r\n"


def test_last_param_with_spaces_gets_colon_prefix() -> None:
    assert build_line("PRIVMSG", "#chan", "hello world") == b"PRIVMSG #chan :hello world\r\n"


def test_last_param_starting_with_colon_gets_colon_prefix() -> None:
    assert build_line("PRIVMSG", "#chan", ":)") == b"PRIVMSG #chan ::)\r\n"


def test_empty_last_param_is_sent_as_trailing() -> None:
    assert build_line("TOPIC", "#chan", "") == b"TOPIC #chan :\r\n"


def test_single_word_last_param_needs_no_colon() -> None:
    assert build_line("JOIN", "#chan") == b"JOIN #chan\r\n"


def test_unicode_text_is_utf8_encoded() -> None:
    assert build_line("PRIVMSG", "#c", "héllo wörld ☃") == "PRIVMSG #c :héllo wörld ☃\r\n".encode()


def test_mirc_formatting_codes_are_allowed_in_text() -> None:
    assert build_line("PRIVMSG", "#c", "\x02bold\x02 \x0304red") == (
        b"PRIVMSG #c :\x02bold\x02 \x0304red\r\n"
    )


def test_tab_is_not_a_separator_and_is_allowed_in_middle_param() -> None:
    assert build_line("MODE", "a\tb", "+i") == b"MODE a\tb +i\r\n"


@pytest.mark.parametrize("bad", FRAMING_CHARS)
def test_framing_char_in_text_is_rejected(bad: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", "#chan", f"hi{bad}QUIT :bye")


@pytest.mark.parametrize("bad", FRAMING_CHARS)
def test_framing_char_in_target_is_rejected(bad: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", f"#chan{bad}QUIT", "hi")


@pytest.mark.parametrize("bad", FRAMING_CHARS)
def test_framing_char_in_command_is_rejected(bad: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line(f"PRIVMSG{bad}QUIT", "#chan", "hi")


@pytest.mark.parametrize("bad", FRAMING_CHARS)
def test_framing_char_in_tag_key_is_rejected(bad: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line("TAGMSG", "#chan", tags={f"+typing{bad}": "active"})


def test_nul_in_tag_value_is_rejected() -> None:
    with pytest.raises(UnsafeLineError):
        build_line("TAGMSG", "#chan", tags={"+draft/reply": "a\0b"})


def test_crlf_in_tag_value_is_escaped_not_sent_raw() -> None:
    line = build_line("TAGMSG", "#chan", tags={"+x": "a\r\nQUIT :bye"})
    assert line == b"@+x=a\\r\\nQUIT\\s:bye TAGMSG #chan\r\n"
    assert line.count(b"\r") == 1 and line.count(b"\n") == 1


def test_classic_quit_injection_via_message_text_is_refused() -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", "#chan", "innocent\r\nQUIT :pwned")


def test_injection_via_lone_lf_is_refused() -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", "#chan", "innocent\nJOIN #secret")


def test_unsafe_line_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        build_line("PRIVMSG", "#chan", "a\rb")


@pytest.mark.parametrize("command", ["", "PRIV MSG", "PRIV:MSG", "12", "1234", "PRIVMSG1", "ÄÖÜ"])
def test_malformed_command_is_rejected(command: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line(command, "x")


def test_middle_param_with_space_is_rejected() -> None:
    # Otherwise "#a #b" would silently become two parameters.
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", "#a #b", "hi")


def test_middle_param_starting_with_colon_is_rejected() -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", ":#chan", "hi")


def test_empty_middle_param_is_rejected() -> None:
    with pytest.raises(UnsafeLineError):
        build_line("PRIVMSG", "", "hi")


def test_non_str_param_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        build_line("PRIVMSG", "#chan", b"bytes")  # type: ignore[arg-type]


def test_line_of_exactly_512_bytes_is_accepted() -> None:
    prefix = "PRIVMSG #c :"
    text = "x " * ((MAX_LINE_BYTES - len(prefix) - 2) // 2)
    assert len(build_line("PRIVMSG", "#c", text)) == MAX_LINE_BYTES


def test_line_of_513_bytes_is_too_long() -> None:
    prefix = "PRIVMSG #c :"
    text = "x " * ((MAX_LINE_BYTES - len(prefix) - 2) // 2) + "y"
    with pytest.raises(LineTooLongError):
        build_line("PRIVMSG", "#c", text)


def test_length_limit_counts_bytes_not_characters() -> None:
    text = "é" * 250  # 250 characters, 500 bytes
    with pytest.raises(LineTooLongError):
        build_line("PRIVMSG", "#c", text)


def test_huge_text_is_too_long_not_truncated() -> None:
    with pytest.raises(LineTooLongError):
        build_line("PRIVMSG", "#c", "a" * 1_000_000)


def test_tags_do_not_count_against_512_bytes() -> None:
    prefix = "PRIVMSG #c :"
    text = "x " * ((MAX_LINE_BYTES - len(prefix) - 2) // 2)
    line = build_line("PRIVMSG", "#c", text, tags={"+example.com/long": "y" * 1000})
    assert line.endswith(b"\r\n")
    assert len(line) > MAX_LINE_BYTES


def test_tags_over_4094_bytes_are_too_long() -> None:
    with pytest.raises(LineTooLongError):
        build_line("TAGMSG", "#c", tags={"+big": "y" * 5000})


def test_tags_are_prefixed_with_at_and_separated_by_semicolons() -> None:
    line = build_line("PRIVMSG", "#c", "hi", tags={"+draft/reply": "abc", "label": "1"})
    assert line == b"@+draft/reply=abc;label=1 PRIVMSG #c hi\r\n"


def test_tag_with_empty_value_is_sent_as_bare_key() -> None:
    assert build_line("TAGMSG", "#c", tags={"+flag": ""}) == b"@+flag TAGMSG #c\r\n"


def test_tag_values_are_escaped_per_ircv3() -> None:
    line = build_line("TAGMSG", "#c", tags={"+v": "a;b c\\d"})
    assert line == b"@+v=a\\:b\\sc\\\\d TAGMSG #c\r\n"


@pytest.mark.parametrize(
    "key", ["", "+", "bad key", "a=b", "a;b", "vendor/", "/key", "+ä", "-x/y z"]
)
def test_invalid_tag_key_is_rejected(key: str) -> None:
    with pytest.raises(UnsafeLineError):
        build_line("TAGMSG", "#c", tags={key: "v"})


@pytest.mark.parametrize("key", ["msgid", "+typing", "draft/label", "+example.com/foo-bar", "a1"])
def test_valid_tag_keys_are_accepted(key: str) -> None:
    assert build_line("TAGMSG", "#c", tags={key: "v"}).startswith(f"@{key}=v ".encode())


def test_empty_tags_dict_adds_no_tag_section() -> None:
    assert build_line("PING", "x", tags={}) == b"PING x\r\n"


def test_built_line_parses_back_to_the_same_message() -> None:
    tags = {"+draft/reply": "id;with spaces\\and\r\nnewlines", "label": "7"}
    line = build_line("PRIVMSG", "#chan", ":-) hello  world ", tags=tags)
    message = parse_line(line)
    assert message.command == "PRIVMSG"
    assert message.params == ["#chan", ":-) hello  world "]
    assert message.tags == tags


# --------------------------------------------------------------------------- tag escaping


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [(";", "\\:"), (" ", "\\s"), ("\\", "\\\\"), ("\r", "\\r"), ("\n", "\\n"), ("plain", "plain")],
)
def test_tag_value_escape_table(raw: str, escaped: str) -> None:
    assert escape_tag_value(raw) == escaped
    assert unescape_tag_value(escaped) == raw


def test_unknown_tag_escape_drops_the_backslash() -> None:
    assert unescape_tag_value("a\\bc") == "abc"


def test_trailing_lone_backslash_in_tag_value_is_dropped() -> None:
    assert unescape_tag_value("abc\\") == "abc"


def test_tag_escaping_round_trips_random_strings() -> None:
    rng = random.Random(1459)
    alphabet = "ab;\\ \r\n:s=é☃"
    for _ in range(500):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert unescape_tag_value(escape_tag_value(value)) == value


# --------------------------------------------------------------------------- parse_line


def test_parses_full_privmsg_with_source() -> None:
    message = parse_line(b":alice!al@host.example PRIVMSG #chan :hello world\r\n")
    assert message == Message(
        command="PRIVMSG",
        params=["#chan", "hello world"],
        tags={},
        source="alice!al@host.example",
        nick="alice",
        user="al",
        host="host.example",
    )


def test_prefix_is_an_alias_of_source() -> None:
    assert parse_line(":irc.example 001 me :hi").prefix == "irc.example"


def test_server_source_has_no_user_or_host() -> None:
    message = parse_line(":irc.example.org 001 me :Welcome")
    assert (message.nick, message.user, message.host) == ("irc.example.org", None, None)


def test_source_with_host_but_no_user() -> None:
    message = parse_line(":nick@host NOTICE me :x")
    assert (message.nick, message.user, message.host) == ("nick", None, "host")


def test_line_without_source() -> None:
    message = parse_line("PING :token")
    assert message.source is None and message.nick is None
    assert message.params == ["token"]


def test_command_is_upper_cased() -> None:
    assert parse_line("privmsg #c :x").command == "PRIVMSG"


def test_tags_are_parsed_and_unescaped() -> None:
    message = parse_line("@time=2024-01-01T00:00:00.000Z;+x=a\\sb\\:c;flag :n!u@h PRIVMSG #c :hi")
    assert message.tags == {"time": "2024-01-01T00:00:00.000Z", "+x": "a b;c", "flag": ""}


def test_empty_trailing_param_is_kept() -> None:
    assert parse_line("TOPIC #c :").params == ["#c", ""]


def test_trailing_keeps_inner_and_outer_spaces() -> None:
    assert parse_line("PRIVMSG #c :  a  b  ").params == ["#c", "  a  b  "]


def test_multiple_spaces_between_params_are_tolerated() -> None:
    assert parse_line(":s   MODE   #c   +o   nick").params == ["#c", "+o", "nick"]


def test_trailing_and_param_accessors() -> None:
    message = parse_line("PRIVMSG #c :hello")
    assert message.trailing == "hello"
    assert message.param(0) == "#c"
    assert message.param(5) is None
    assert message.param(5, "dflt") == "dflt"


def test_accepts_lf_only_and_no_line_ending() -> None:
    assert parse_line(b"PING x\n").params == ["x"]
    assert parse_line(b"PING x").params == ["x"]


def test_invalid_utf8_falls_back_to_latin1() -> None:
    message = parse_line(b"PRIVMSG #c :caf\xe9\r\n")
    assert message.params[1] == "café"


def test_valid_utf8_is_decoded_as_utf8() -> None:
    assert parse_line("PRIVMSG #c :café".encode()).params[1] == "café"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"   ",
        b":onlysource",
        b": PRIVMSG #c :x",
        b"@tags=only",
        b"@a=b :src",
        b"PRIV\x01MSG #c :x",
        b"1234 x",
        b"PRIVMSG #c :a\rQUIT",
        b"PRIVMSG #c :a\nQUIT :x",
        b"PRIVMSG #c :a\x00b",
    ],
)
def test_garbage_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_line(raw)


def test_non_string_input_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_line(12345)  # type: ignore[arg-type]


def test_random_bytes_only_ever_raise_parse_error() -> None:
    rng = random.Random(6667)
    interesting = b" :@;=!\\\r\n\x00\x01abcPRIVMSG#0123\xff\xe9"
    for _ in range(3000):
        raw = bytes(rng.choice(interesting) for _ in range(rng.randint(0, 40)))
        try:
            message = parse_line(raw)
        except ParseError:
            continue
        assert isinstance(message.command, str) and message.command
        assert all(isinstance(p, str) for p in message.params)


def test_huge_line_is_parsed_without_error() -> None:
    message = parse_line(b"PRIVMSG #c :" + b"x" * 1_000_000)
    assert len(message.params[1]) == 1_000_000
