"""Edge cases of what a Slack file may be on Matrix (names, types, hosts); the end-to-end
behaviour is in test_e2e_files.py."""

from __future__ import annotations

import pytest

from bridgekit.contract.file_checks import (
    allowed_file_url,
    allowed_hosts,
    clean_mime,
    clean_name,
    media_kind,
)

pytestmark = pytest.mark.engine_independent

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("cat.png", "cat.png"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\secret.txt", "secret.txt"),
        ("a\x00b\x1b[31mc.txt", "a b [31mc.txt"),
        ("evil\u202egnp.exe", "evil gnp.exe"),
        ("line\nbreak.txt", "line break.txt"),
        ("..", "file"),
        ("", "file"),
        (None, "file"),
        ("/", "file"),
        ("x" * 500, "x" * 200),
        ("<b>bold</b>.txt", "b>.txt"),
    ],
)
def test_clean_name(raw: object, clean: str) -> None:
    assert clean_name(raw) == clean


def test_media_kind_follows_the_bytes() -> None:
    assert media_kind("image/png", PNG) == ("m.image", "image/png")
    assert media_kind("image/png", b"<html><script>") == ("m.file", "application/octet-stream")
    assert media_kind("image/gif", PNG) == ("m.image", "image/gif")  # an image all the same
    assert media_kind("video/mp4", PNG) == ("m.image", "image/png")  # the bytes decide
    assert media_kind("application/pdf", b"%PDF") == ("m.file", "application/pdf")
    assert media_kind("text/html", b"<html>") == ("m.file", "application/octet-stream")
    assert media_kind("image/svg+xml", b"<svg onload=x>") == ("m.file", "application/octet-stream")
    assert media_kind(None, b"") == ("m.file", "application/octet-stream")
    assert media_kind("audio/mpeg", b"ID3\x03") == ("m.audio", "audio/mpeg")


def test_clean_mime() -> None:
    assert clean_mime("Application/PDF; charset=x") == "application/pdf"
    assert clean_mime("text/plain\r\nX-Evil: 1") == "application/octet-stream"
    assert clean_mime("not a type") == "application/octet-stream"
    assert clean_mime(42) == "application/octet-stream"


def test_only_allowed_hosts_and_ports() -> None:
    hosts = allowed_hosts("https://slack.com/api/", ["files.slack.com", "files.example:8443"])
    ok = "https://files.slack.com/files-pri/T1-F1/cat.png"
    assert allowed_file_url(ok, hosts)
    assert allowed_file_url("https://FILES.slack.com./files-pri/T1-F1/x", hosts)
    assert allowed_file_url("https://slack.com/files-pri/T1-F1/x", hosts)  # the API's host
    assert allowed_file_url("https://files.example:8443/x", hosts)
    for bad in (
        "https://files.slack.com.evil.example/x",
        "https://evil.example/files.slack.com/x",
        "https://files.slack.com:8443/x",  # another port of an allowed host
        "https://files.example/x",  # the allowed port only
        "https://files.slack.com@evil.example/x",
        "https://user@files.slack.com/x",
        "ftp://files.slack.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://files.slack.com:99999/x",
        "//files.slack.com/x",
        None,
        42,
    ):
        assert not allowed_file_url(bad, hosts), bad
    fake = allowed_hosts("http://127.0.0.1:5555/api/", [])
    assert allowed_file_url("http://127.0.0.1:5555/files-pri/x", fake)
    assert not allowed_file_url("http://127.0.0.1:5556/files-pri/x", fake)
