"""Edge cases of attachments in encrypted rooms (bridgekit/matrix/encrypted_media.py): an
untrusted event's ``file`` is checked before use, and a wrong hash or key is a MediaError,
never another exception (the end-to-end cases: tests/test_e2e_encrypted_media.py)."""

from __future__ import annotations

import pytest

from bridgekit.contract.connector import MediaError
from bridgekit.matrix.encrypted_media import FileKeys, decrypt, encrypt, parse_file
from bridgekit.matrix.media import MediaSigner

pytestmark = pytest.mark.engine_independent


def _file(**over: object) -> dict[str, object]:
    file: dict[str, object] = {
        "url": "mxc://example.org/abc",
        "key": {"k": "a2V5", "alg": "A256CTR"},
        "iv": "aXY",
        "hashes": {"sha256": "aGFzaA"},
        "v": "v2",
    }
    file.update(over)
    return file


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "mxc://example.org/abc",
        _file(url="https://example.org/abc"),
        _file(url="mxc://example.org/../x"),
        _file(key="k"),
        _file(key={"k": 5}),
        _file(iv=""),
        _file(hashes={}),
        _file(hashes=["sha256"]),
    ],
)
def test_a_malformed_file_is_not_used(bad: object) -> None:
    assert parse_file(bad) is None


def test_a_well_formed_file() -> None:
    assert parse_file(_file()) == {
        "url": "mxc://example.org/abc",
        "k": "a2V5",
        "iv": "aXY",
        "sha256": "aGFzaA",
    }


async def test_round_trip_and_wrong_keys_are_media_errors() -> None:
    data = b"attachment bytes " * 100
    ciphertext, info = await encrypt(data)
    assert ciphertext != data and info["v"] == "v2" and "url" not in info
    file = parse_file({"url": "mxc://example.org/abc", **info})
    assert file is not None and await decrypt(ciphertext, file) == data
    with pytest.raises(MediaError, match="does not decrypt"):
        await decrypt(ciphertext + b"x", file)  # the hash no longer matches
    for broken in ({"k": "!!"}, {"iv": "short"}, {"k": "\u00e9"}):
        sha_ok = {**file, **broken}
        with pytest.raises(MediaError):
            await decrypt(ciphertext, sha_ok)


def test_keys_are_bounded() -> None:
    keys = FileKeys(limit=2)
    for n in range(3):
        keys.remember({"url": f"mxc://s/{n}", "k": "", "iv": "", "sha256": ""})
    assert keys.get("mxc://s/0") is None and keys.get("mxc://s/2") is not None
    keys.forget("mxc://s/2")
    assert keys.get("mxc://s/2") is None


def test_an_encrypted_link_signs_its_keys() -> None:
    signer = MediaSigner("secret")
    file = {"k": "a-b_c", "iv": "i+v/", "sha256": "h+a/sh"}
    link = signer.url("http://h", "mxc://s/m", "f.png", file)
    head, keys, sig, name = link.rsplit("/", 3)
    assert keys == "a-b_c.i-v_.h-a_sh" and name == "f.png"
    assert signer.verify("s", f"m/{keys}", sig) and not signer.verify("s", "m", sig)
    assert link != signer.url("http://h", "mxc://s/m", "f.png")
