"""The per-line progress marker of a Matrix message going to IRC (see bridges/irc/progress.py);
the kill -9 test is tests/irc/test_e2e_reliability.py."""

from __future__ import annotations

import asyncio

from bridges.irc.client import IRCConnection
from bridges.irc.config import parse
from bridges.irc.progress import line_ends, progress_value, resume_offset
from bridges.irc.protocol import IRCProtocol
from bridges.irc.split import split_message

TEXT = "\n".join(f"line {i}" for i in range(5))


def test_resume_after_the_text_the_marker_names():
    assert resume_offset(None, "$e", TEXT) == 0
    assert resume_offset(progress_value("$other", 6, TEXT), "$e", TEXT) == 0
    assert resume_offset(progress_value("$e", 0, TEXT), "$e", TEXT) == 0
    assert resume_offset(progress_value("$e", 13, TEXT), "$e", TEXT) == 13
    assert resume_offset(progress_value("$e", len(TEXT), TEXT), "$e", TEXT) == len(TEXT)
    # The marker of an earlier version: the event id alone, and the message counted as sent.
    assert resume_offset("$e", "$e", TEXT) == len(TEXT)
    assert resume_offset("$f", "$e", TEXT) == 0
    assert resume_offset("$e notanumber y", "$e", TEXT) == 0
    # Rendered differently since (a longer nick in it): the offset is kept, within the text.
    assert resume_offset(progress_value("$e", 13, TEXT), "$e", "x" + TEXT) == 13
    assert resume_offset(progress_value("$e", 99, TEXT + "x" * 99), "$e", TEXT) == len(TEXT)


def test_an_offset_holds_when_the_text_splits_differently_after_a_restart():
    text = " ".join(f"word{i:04d}" for i in range(100))
    before = split_message(text, 120)
    ends = line_ends(text, before)
    assert [text[e - len(c) : e] for c, e in zip(before, ends, strict=True)] == before
    marked = progress_value("$e", ends[1], text)  # two lines out, then the kill
    at = resume_offset(marked, "$e", text)
    after = split_message(text[at:].lstrip(), 90)  # less room per line now
    assert " ".join(before[:2] + after) == text  # nothing lost, nothing repeated


class _Transport:
    def __init__(self, written: list[bytes]) -> None:
        self.written = written

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


def _connection(rate: float, burst: int) -> tuple[IRCConnection, list[bytes]]:
    sc = parse({"servers": {"t": {"host": "127.0.0.1", "port": 1}}})["t"]
    conn = IRCConnection(
        sc,
        "n",
        on_line=lambda msg: None,
        on_registered=lambda: None,
        on_state=lambda state, message: None,
        semaphore=asyncio.Semaphore(1),
    )
    written: list[bytes] = []
    conn._proto = IRCProtocol(conn)
    conn._proto.transport = _Transport(written)  # type: ignore[assignment]
    conn.bucket.rate, conn.bucket.burst, conn.bucket.tokens = rate, float(burst), float(burst)
    conn.ready.set()
    return conn, written


def _marks_and_writes(rate: float, burst: int) -> tuple[list[tuple[int, int]], list[bytes]]:
    """(marked index, lines written when it was marked) for a 10-line item; what was written."""

    async def run() -> tuple[list[tuple[int, int]], list[bytes]]:
        conn, written = _connection(rate, burst)
        marks: list[tuple[int, int]] = []

        async def mark(last: int) -> None:
            marks.append((last, len(written)))

        lines = [f"PRIVMSG #c :{i}\r\n".encode() for i in range(10)]
        await asyncio.wait_for(conn.send(*lines, before_write=mark), 10)
        return marks, written

    return asyncio.run(run())


def test_every_line_is_marked_before_it_is_written_one_commit_per_burst():
    marks, written = _marks_and_writes(rate=1000, burst=4)
    assert len(written) == 10
    assert marks[0] == (3, 0)  # one marker for the first burst of four lines
    assert len(marks) < 10
    previous = -1
    for last, before in marks:
        assert before == previous + 1  # each marker covers the next lines, none skipped
        previous = last
    assert previous == 9


def test_with_slow_pacing_each_line_is_marked_right_before_it_goes_out():
    marks, written = _marks_and_writes(rate=200, burst=1)
    assert len(written) == 10
    assert marks == [(i, i) for i in range(10)]


def test_a_burst_marked_while_the_connection_dropped_is_taken_back():
    async def run() -> tuple[list[int], list[bytes]]:
        conn, written = _connection(1000, 10)
        marks: list[int] = []

        async def mark(last: int) -> None:
            marks.append(last)
            if len(marks) == 1:
                conn.ready.clear()  # the connection drops while the marker commits
                asyncio.get_running_loop().call_later(0.05, conn.ready.set)

        done = conn.send(b"a\r\n", b"b\r\n", before_write=mark)
        await asyncio.wait_for(done, 5)
        return marks, written

    marks, written = asyncio.run(run())
    assert marks == [1, -1, 1]  # marked, taken back (nothing written), marked again
    assert written == [b"a\r\n", b"b\r\n"]
