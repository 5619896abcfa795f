"""Packet capture for bench/irc.py: when each benchmark message enters and leaves the bridge.

Runs as a child process (``python bench/irc_capture.py ROLES``, started by :class:`Sniffer`)
with an AF_PACKET socket on ``lo`` and a classic BPF filter, so the kernel timestamps packets
and nothing is added to the bridge's path. Needs CAP_NET_RAW; without it the benchmark shows
only the bridge's own histogram.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
from typing import Any

MARKER_BYTES_RE = re.compile(rb"BK([IM])(\d{7})")
#: An event id in JSON: in encrypted rooms the markers travel as ciphertext, so the capture
#: keys the Matrix side of a message by its event id instead (``--encrypted``).
EVENT_ID_RE = re.compile(rb'"event_id"\s*:\s*"(\$[A-Za-z0-9_\-+/=]{10,80})"')


# -- packet capture (child process) -----------------------------------------------------------

SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def bpf_program(ports: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF: outgoing IPv4 TCP packets on lo from or to one of ``ports``."""
    ld_w, ld_h, ld_b, ldx_msh, ld_h_ind, jeq, jset, ret = (
        0x20,
        0x28,
        0x30,
        0xB1,
        0x48,
        0x15,
        0x45,
        0x06,
    )
    body: list[tuple[int, Any, Any, int]] = [
        (ld_w, 0, 0, 0xFFFFF000 + 4),  # SKF_AD_OFF + SKF_AD_PKTTYPE
        (jeq, 0, "drop", PACKET_OUTGOING),  # lo shows each packet twice: keep one copy
        (ld_h, 0, 0, 12),
        (jeq, 0, "drop", 0x0800),
        (ld_b, 0, 0, 23),
        (jeq, 0, "drop", 6),
        (ld_h, 0, 0, 20),
        (jset, "drop", 0, 0x1FFF),
        (ldx_msh, 0, 0, 14),
        (ld_h_ind, 0, 0, 14),
        *[(jeq, "accept", 0, p) for p in ports],
        (ld_h_ind, 0, 0, 16),
        *[(jeq, "accept", 0, p) for p in ports],
    ]
    drop, accept = len(body), len(body) + 1
    out = []
    for i, (code, jt, jf, k) in enumerate(body):
        jt = (
            {"drop": drop, "accept": accept}.get(jt, i + 1) - (i + 1) if isinstance(jt, str) else jt
        )
        jf = (
            {"drop": drop, "accept": accept}.get(jf, i + 1) - (i + 1) if isinstance(jf, str) else jf
        )
        out.append((code, jt, jf, k))
    out += [(ret, 0, 0, 0), (ret, 0, 0, 0x40000)]
    return out


def sniff_main(roles_arg: str, event_ids: bool = False) -> None:
    """Child process: first kernel timestamp of every marker per (source role > dest role).

    Roles are named ports (ircd, hs, as, bob); other ports are "x". An HTTP response to a
    request that carried markers is recorded as ``resp>hs`` / ``resp>as`` for those markers.
    With ``event_ids`` (encrypted rooms, where the markers are ciphertext on the Matrix side),
    also ``E<event id>|x>as`` (first packet of a transaction to the bridge naming the event),
    and for each ``PUT .../send/...`` to Synapse ``E<event id>|x>hs`` (the request's first
    packet) and ``E<event id>|resp>hs`` (its response, which names the new event).
    Runs until stdin is closed, then prints the JSON and exits.
    """
    roles = {int(p): name for name, p in json.loads(roles_arg).items()}
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    program = bpf_program(sorted(roles))
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in program))
    filtered = True
    try:
        fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError:
        filtered = False
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("lo", 0))
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # anything queued before the filter was attached
            sock.recv(65536)
    first: dict[str, float] = {}
    open_requests: dict[tuple[int, int], list[str]] = {}
    sends: dict[tuple[int, int], float] = {}  # PUT /send requests to hs: their first packet
    answers: dict[tuple[int, int], tuple[float, float]] = {}  # (request, response) stamps
    packets = 0
    print(json.dumps({"ready": True, "bpf": filtered}), flush=True)
    stdin = sys.stdin.fileno()
    while True:
        readable, _, _ = select.select([sock, stdin], [], [], 1.0)
        if stdin in readable and not os.read(stdin, 4096):
            break
        if sock not in readable:
            continue
        while True:
            try:
                data, anc, _, addr = sock.recvmsg(65536, 64)
            except BlockingIOError:
                break
            if addr[2] != PACKET_OUTGOING or len(data) < 54 or data[12:14] != b"\x08\x00":
                continue
            if data[23] != 6:
                continue
            ihl = (data[14] & 0x0F) * 4
            tcp = 14 + ihl
            sport, dport = struct.unpack_from("!HH", data, tcp)
            src, dst = roles.get(sport), roles.get(dport)
            if src is None and dst is None:
                continue
            payload = data[tcp + (data[tcp + 12] >> 4) * 4 :]
            if not payload:
                continue
            packets += 1
            stamp = 0.0
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamp = sec + nsec / 1e9
            if dst in ("hs", "as") and src is None:
                tokens = [f"{k.decode()}{s.decode()}" for k, s in MARKER_BYTES_RE.findall(payload)]
                if tokens:
                    open_requests.setdefault((sport, dport), []).extend(tokens)
            elif src in ("hs", "as") and dst is None and payload.startswith(b"HTTP/1."):
                for token in open_requests.pop((dport, sport), []):
                    first.setdefault(f"{token}|resp>{src}", stamp)
            if event_ids:
                if dst == "as" and src is None:
                    for eid in EVENT_ID_RE.findall(payload):
                        first.setdefault(f"E{eid.decode()}|x>as", stamp)
                elif dst == "hs" and src is None:
                    line = payload[:300].split(b"\r\n", 1)[0]
                    if line.startswith(b"PUT ") and b"/send/" in line:
                        sends.setdefault((sport, dport), stamp)
                elif src == "hs" and dst is None:
                    key = (dport, sport)
                    if payload.startswith(b"HTTP/1.") and key in sends:
                        answers[key] = (sends.pop(key), stamp)
                    if key in answers:
                        found = EVENT_ID_RE.search(payload)
                        if found:
                            req, resp = answers.pop(key)
                            first.setdefault(f"E{found.group(1).decode()}|x>hs", req)
                            first.setdefault(f"E{found.group(1).decode()}|resp>hs", resp)
            route = f"{src or 'x'}>{dst or 'x'}"
            for k, s in MARKER_BYTES_RE.findall(payload):
                first.setdefault(f"{k.decode()}{s.decode()}|{route}", stamp)
    print(json.dumps({"stamps": first, "packets": packets, "bpf": filtered}), flush=True)


class Sniffer:
    def __init__(self, roles: dict[str, int], event_ids: bool = False) -> None:
        self.roles = roles
        self.event_ids = event_ids
        self.proc: subprocess.Popen[str] | None = None
        self.error: str | None = None
        self.bpf = False

    def start(self) -> bool:
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    json.dumps(self.roles),
                    *(["--event-ids"] if self.event_ids else []),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(self.proc.stderr.read() if self.proc.stderr else "no output")
            self.bpf = bool(json.loads(line).get("bpf"))
            return True
        except Exception as e:  # no CAP_NET_RAW, no AF_PACKET...
            self.error = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
            self.proc = None
            return False

    def stop(self) -> dict[str, float]:
        if self.proc is None:
            return {}
        out, _ = self.proc.communicate(timeout=60)
        self.proc = None
        data = json.loads(out.strip().splitlines()[-1])
        return {k: float(v) for k, v in data["stamps"].items()}


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(
            "usage: irc_capture.py '{\"role\": port, ...}' [--event-ids] (bench/irc.py starts it)"
        )
    sniff_main(sys.argv[1], sys.argv[2:] == ["--event-ids"])
