"""Adding the bridge to Synapse's ``homeserver.yaml``, for ``generate-registration
--homeserver-config``: the registration file in ``app_service_config_files`` and, with
encryption allowed, the ``experimental_features`` end-to-bridge encryption needs.

The file is the admin's: it is edited round-trip (ruamel.yaml), so their comments and every
other key stay; a run that has nothing to add leaves the file untouched (byte for byte); the
file keeps its mode (it holds Synapse's secrets); anything that is not what Synapse reads
(the file not a mapping, ``app_service_config_files`` not a list...) is refused with the
reason, never overwritten.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

#: Synapse's ``experimental_features`` that end-to-bridge encryption needs: to-device
#: messages (MSC2409) and one-time-key counts / device lists (MSC3202) in transactions.
ENCRYPTION_FEATURES = ("msc2409_to_device_messages_enabled", "msc3202_transaction_extensions")


class HomeserverConfigError(Exception):
    """The homeserver config cannot be edited safely; the message says why."""


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: comments, key order and quoting are kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the admin's long lines
    yaml.indent(mapping=2, sequence=4, offset=2)  # as Synapse's generated file (top level)
    return yaml


def add_bridge(path: Path, registration: Path, *, encryption: bool) -> list[str]:
    """Add ``registration`` (listed by its absolute path) and, if ``encryption``, the
    experimental features to the Synapse config at ``path``; return what changed (empty:
    the file was left as it was)."""
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as e:
        raise HomeserverConfigError(f"cannot read {path}: {e.strerror or e}") from e
    yaml = _yaml()
    try:
        data = yaml.load(original)
    except YAMLError as e:
        raise HomeserverConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(data, CommentedMap):
        raise HomeserverConfigError(
            f"{path} is not a YAML mapping (Synapse's homeserver.yaml is one): left unchanged"
        )
    had = set(data)
    changes = _add_registration(data, path, registration.resolve())
    if encryption:
        changes += _add_features(data, path)
    if not changes:
        return []
    new_keys = [k for k in data if k not in had]
    if not any(change.split(":", 1)[0] in had for change in changes):
        # Only new top-level keys: appended as text, the admin's lines untouched.
        out = io.StringIO()
        yaml.dump(CommentedMap((k, data[k]) for k in new_keys), out)
        text = original + ("" if original.endswith("\n") or not original else "\n")
        text += "# Added by `bridgekit generate-registration --homeserver-config`:\n"
        text += out.getvalue()
    else:  # an existing key changed: round-trip (nested lists may be re-indented)
        out = io.StringIO()
        yaml.dump(data, out)
        text = out.getvalue()
    _replace(path, text)
    return changes


def _add_registration(data: CommentedMap, path: Path, registration: Path) -> list[str]:
    files: Any = data.get("app_service_config_files")
    if files is None:
        data["app_service_config_files"] = CommentedSeq([str(registration)])
        return [f"app_service_config_files: added {registration}"]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise HomeserverConfigError(
            f"{path}: app_service_config_files is not a list of file names: left unchanged"
        )
    base = path.parent  # where a relative entry most likely points (Synapse's own directory)
    if any(_same_file(base, f, registration) for f in files):
        return []
    files.append(str(registration))
    return [f"app_service_config_files: added {registration}"]


def _same_file(base: Path, entry: str, registration: Path) -> bool:
    listed = Path(entry).expanduser()
    if not listed.is_absolute():
        listed = base / listed
    return os.path.normpath(listed) == os.path.normpath(registration) or (
        listed.exists() and registration.exists() and listed.samefile(registration)
    )


def _add_features(data: CommentedMap, path: Path) -> list[str]:
    features: Any = data.get("experimental_features")
    if features is None:
        features = data["experimental_features"] = CommentedMap()
    elif not isinstance(features, dict):
        raise HomeserverConfigError(
            f"{path}: experimental_features is not a mapping: left unchanged"
        )
    changes = []
    for name in ENCRYPTION_FEATURES:
        if features.get(name) is not True:
            features[name] = True
            changes.append(f"experimental_features: {name}: true")
    return changes


def _replace(path: Path, text: str) -> None:
    """Write ``text`` over ``path`` at once (a crash leaves the old file or the new one, never
    half of one), with the old file's mode."""
    path = path.resolve()  # a symlinked homeserver.yaml stays a symlink
    st = path.stat()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, st.st_mode & 0o7777)
        with contextlib.suppress(OSError):  # keep Synapse's owner when run as root
            os.fchown(fd, st.st_uid, st.st_gid)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
