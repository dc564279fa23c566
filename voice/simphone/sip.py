"""SIP messages (RFC 3261) for the simphone, parsing only (SDP is `voice.simphone.sdp`).

Pure dataclasses: `SipRequest.parse` / `SipResponse.parse` / `parse_message` read one UDP
datagram and raise `ValueError` with a precise message; `bytes(msg)` writes it back. Header
names and order are kept as received, so `bytes(parse(x)) == x` for a message written in the
usual `Name: value` form. Compact header names (`v`, `f`, `t`, `i`, …) are understood.
No transactions or sockets here: those live in `voice.simphone.transactions`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"

COMPACT = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
}

REASONS = {
    100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
    400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 500: "Server Internal Error",
    501: "Not Implemented", 603: "Decline",
}

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")


def canonical(name: str) -> str:
    """The lower-case long form of a header name (`v` → `via`)."""
    low = name.strip().lower()
    return COMPACT.get(low, low)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:  # tolerate bare LF line ends (RFC 3261 §7.5 asks parsers to)
        end, sep = data.find(b"\n\n"), 2
    if end < 0:
        raise ValueError("SIP message has no blank line ending the headers (truncated?)")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"SIP headers are not UTF-8: {exc}") from None
    return head.replace("\r\n", "\n").split("\n"), data[end + sep:]


def _parse_headers(lines: Sequence[str], first: int = 2) -> list[tuple[str, str]]:
    """`Name: value` lines as pairs; `first` numbers the first line in error messages (2: the
    line after a start line)."""
    headers: list[tuple[str, str]] = []
    for n, line in enumerate(lines, start=first):
        if not line:
            raise ValueError(f"SIP header line {n} is empty")
        if line[0] in " \t":  # folded continuation of the previous header
            if not headers:
                raise ValueError("SIP header continuation before any header")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            raise ValueError(f"SIP header line {n} is not `Name: value`: {line[:60]!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def parse_headers(text: str) -> list[tuple[str, str]]:
    """Header lines written out on their own (`Name: value`, CRLF or LF line ends, folding
    allowed) as the pairs a message keeps, e.g. extra headers a test gives as text; blank
    text gives none. Raises `ValueError` as for a message's headers."""
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n") if text.strip() else []
    return _parse_headers(lines, first=1)


def _body(headers: Sequence[tuple[str, str]], rest: bytes) -> bytes:
    length = next((v for k, v in headers if canonical(k) == "content-length"), None)
    if length is None:
        return rest  # UDP: the body is the rest of the datagram
    if not length.isdigit():
        raise ValueError(f"Content-Length is not a number: {length!r}")
    size = int(length)
    if size > len(rest):
        raise ValueError(f"SIP body truncated: Content-Length {size}, {len(rest)} bytes present")
    return rest[:size]


class _Headers:
    """Header access shared by requests and responses (`headers` is a list of pairs)."""

    headers: list[tuple[str, str]]
    body: bytes

    def get(self, name: str, default: str = "") -> str:
        key = canonical(name)
        return next((v for k, v in self.headers if canonical(k) == key), default)

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, comma-separated lists split (Via, Record-Route, Route)."""
        key = canonical(name)
        out: list[str] = []
        for k, v in self.headers:
            if canonical(k) == key:
                out += split_list(v)
        return out

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def cseq(self) -> tuple[int, str]:
        value = self.get("cseq")
        number, _, method = value.partition(" ")
        if not number.isdigit() or not method.strip():
            raise ValueError(f"bad CSeq {value!r}")
        return int(number), method.strip().upper()

    @property
    def branch(self) -> str:
        vias = self.get_all("via")
        return header_param(vias[0], "branch") if vias else ""

    @property
    def from_tag(self) -> str:
        return header_param(self.get("from"), "tag")

    @property
    def to_tag(self) -> str:
        return header_param(self.get("to"), "tag")

    def _head_bytes(self, start: str) -> bytes:
        lines = [start, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class SipRequest(_Headers):
    method: str
    uri: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SipRequest:
        lines, rest = _split_head(data)
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] != SIP_VERSION or not _TOKEN.match(parts[0]):
            raise ValueError(f"not a SIP request line: {lines[0][:80]!r}")
        headers = _parse_headers(lines[1:])
        return cls(parts[0], parts[1], headers, _body(headers, rest))

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} {SIP_VERSION}"

    def __bytes__(self) -> bytes:
        return self._head_bytes(self.start_line)


@dataclass
class SipResponse(_Headers):
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SipResponse:
        lines, rest = _split_head(data)
        version, _, tail = lines[0].partition(" ")
        code, _, reason = tail.partition(" ")
        if version != SIP_VERSION or len(code) != 3 or not code.isdigit():
            raise ValueError(f"not a SIP status line: {lines[0][:80]!r}")
        if not 100 <= int(code) <= 699:
            raise ValueError(f"SIP status {code} is out of range")
        headers = _parse_headers(lines[1:])
        return cls(int(code), reason, headers, _body(headers, rest))

    @property
    def start_line(self) -> str:
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def __bytes__(self) -> bytes:
        return self._head_bytes(self.start_line)


SipMessage = SipRequest | SipResponse


def parse_message(data: bytes) -> SipMessage:
    if not data.strip():
        raise ValueError("empty SIP datagram")
    if data.startswith(SIP_VERSION.encode() + b" "):
        return SipResponse.parse(data)
    return SipRequest.parse(data)


# --- header values ----------------------------------------------------------------------


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas inside <…> and "…"."""
    items: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def _params_part(value: str) -> str:
    """The `;param` tail of a name-addr / Via value, outside the <…> URI."""
    close = value.rfind(">")
    if close >= 0:
        return value[close + 1:]
    semi = value.find(";")
    return value[semi:] if semi >= 0 else ""


def header_param(value: str, name: str) -> str:
    """A header parameter such as `tag` or `branch` ('' when absent)."""
    for part in _params_part(value).split(";"):
        key, _, val = part.strip().partition("=")
        if key.lower() == name.lower():
            return val.strip()
    return ""


def with_tag(value: str, tag: str) -> str:
    return value if header_param(value, "tag") else f"{value};tag={tag}"


def addr_uri(value: str) -> str:
    """The URI of a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or addr-spec."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise ValueError(f"unclosed <…> in {value!r}")
        return value[lt + 1:gt].strip()
    return value.split(";", 1)[0].strip()


@dataclass(frozen=True)
class SipUri:
    user: str
    host: str
    port: int | None
    params: str = ""  # ';lr;transport=udp' as written

    @classmethod
    def parse(cls, uri: str) -> SipUri:
        scheme, colon, rest = uri.partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise ValueError(f"not a sip: URI: {uri!r}")
        rest = rest.split("?", 1)[0]
        hostport, _, params = rest.partition(";")
        user, at, host = hostport.rpartition("@")
        if not at:
            user, host = "", hostport
        if host.startswith("["):
            close = host.find("]")
            name, port_text = host[1:close], host[close + 2:]
        else:
            name, _, port_text = host.partition(":")
        if not name:
            raise ValueError(f"sip: URI without a host: {uri!r}")
        if port_text and not port_text.isdigit():
            raise ValueError(f"bad port in {uri!r}")
        user = user.split(":", 1)[0]  # drop a password
        return cls(user, name, int(port_text) if port_text else None,
                   f";{params}" if params else "")

    @property
    def loose_route(self) -> bool:
        return any(p.split("=", 1)[0].lower() == "lr" for p in self.params.split(";") if p)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port or 5060


def response_to(request: SipRequest, status: int, reason: str | None = None, *,
                to_tag: str = "", headers: Iterable[tuple[str, str]] = (),
                body: bytes = b"", content_type: str = "application/sdp") -> SipResponse:
    """A response to `request` (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq copied, the To
    tag added (except on 100), and the Record-Route of a dialog-creating INVITE response."""
    out: list[tuple[str, str]] = [("Via", v) for v in request.get_all("via")]
    to = request.get("to")
    out += [("From", request.get("from")),
            ("To", with_tag(to, to_tag) if to_tag and status > 100 else to),
            ("Call-ID", request.call_id), ("CSeq", request.get("cseq"))]
    if request.method == "INVITE" and 100 < status < 300:
        out += [("Record-Route", rr) for rr in request.get_all("record-route")]
    out += list(headers)
    if body:
        out.append(("Content-Type", content_type))
    out.append(("Content-Length", str(len(body))))
    return SipResponse(status, reason or REASONS.get(status, "Unknown"), out, body)
