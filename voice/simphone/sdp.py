"""SDP (RFC 4566 subset) and offer/answer (RFC 3264) for the simphone, parsing only.

`Sdp.parse` reads the gateway's offer, `negotiate` picks G.711 (PCMA first) and keeps
telephone-event, `build_answer` writes the answer; pure functions, `ValueError` on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATIC_CODECS = {0: "PCMU", 8: "PCMA"}


@dataclass(frozen=True)
class SdpMedia:
    media: str
    port: int
    proto: str
    formats: tuple[int, ...]
    rtpmap: dict[int, str] = field(default_factory=dict)  # pt → 'PCMA/8000'
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    connection: str = ""  # media-level c= address, overrides the session one

    def codec(self, pt: int) -> str:
        """`NAME/RATE` of a payload type (static types need no rtpmap)."""
        if pt in self.rtpmap:
            return self.rtpmap[pt]
        return f"{STATIC_CODECS[pt]}/8000" if pt in STATIC_CODECS else ""


@dataclass(frozen=True)
class Sdp:
    connection: str
    media: tuple[SdpMedia, ...]
    origin: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Sdp:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"SDP is not UTF-8: {exc}") from None
        lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
        if not lines or lines[0] != "v=0":
            raise ValueError("SDP must start with v=0")
        connection, origin = "", ""
        media: list[dict[str, object]] = []
        for line in lines[1:]:
            kind, eq, value = line.partition("=")
            if not eq or len(kind) != 1:
                raise ValueError(f"bad SDP line {line[:60]!r}")
            current = media[-1] if media else None
            if kind == "o":
                origin = value
            elif kind == "c":
                parts = value.split()
                if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                    raise ValueError(f"bad SDP connection line {line!r}")
                if current is None:
                    connection = parts[2].split("/")[0]
                else:
                    current["connection"] = parts[2].split("/")[0]
            elif kind == "m":
                parts = value.split()
                if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                    raise ValueError(f"bad SDP media line {line!r}")
                formats = tuple(int(f) for f in parts[3:] if f.isdigit())
                media.append({"media": parts[0], "port": int(parts[1].split("/")[0]),
                              "proto": parts[2], "formats": formats, "rtpmap": {}, "fmtp": {},
                              "direction": "sendrecv", "connection": ""})
            elif kind == "a" and current is not None:
                attr, _, arg = value.partition(":")
                if attr in ("rtpmap", "fmtp"):
                    pt_text, _, spec = arg.partition(" ")
                    if not pt_text.isdigit():
                        raise ValueError(f"bad SDP {attr} line {line!r}")
                    table = current[attr]
                    assert isinstance(table, dict)
                    table[int(pt_text)] = spec.strip()
                elif attr in ("sendrecv", "sendonly", "recvonly", "inactive"):
                    current["direction"] = attr
        return cls(connection, tuple(SdpMedia(**m) for m in media),  # type: ignore[arg-type]
                   origin)

    def audio(self) -> SdpMedia:
        for m in self.media:
            if m.media == "audio" and m.port:
                return m
        raise ValueError("SDP offer has no active audio stream")


@dataclass(frozen=True)
class Negotiated:
    """What an answer agreed: the remote RTP address, one G.711 codec, telephone-event."""

    remote_host: str
    remote_port: int
    payload_type: int  # 8 PCMA or 0 PCMU
    codec: str  # 'PCMA' | 'PCMU'
    dtmf_payload_type: int | None  # the offer's telephone-event/8000, if any
    media_index: int = 0

    @property
    def remote(self) -> tuple[str, int]:
        return self.remote_host, self.remote_port


def negotiate(offer: Sdp) -> Negotiated:
    """Choose PCMA if offered, else PCMU, plus the offer's telephone-event/8000.

    Raises ValueError when no G.711 codec is offered (answer 488 Not Acceptable Here).
    """
    audio = offer.audio()
    index = offer.media.index(audio)
    host = audio.connection or offer.connection
    if not host:
        raise ValueError("SDP offer has no connection address")
    chosen: tuple[int, str] | None = None
    for wanted in ("PCMA", "PCMU"):
        for pt in audio.formats:
            if audio.codec(pt).upper() == f"{wanted}/8000":
                chosen = (pt, wanted)
                break
        if chosen:
            break
    if chosen is None:
        raise ValueError(f"no PCMA/PCMU in the offer's formats {list(audio.formats)}")
    dtmf = next((pt for pt in audio.formats
                 if audio.codec(pt).lower() == "telephone-event/8000"), None)
    return Negotiated(host, audio.port, chosen[0], chosen[1], dtmf, index)


def build_answer(offer: Sdp, negotiated: Negotiated, local_host: str, local_port: int, *,
                 session_id: int, version: int = 1, direction: str = "sendrecv") -> bytes:
    """The SDP answer for `negotiate(offer)`: the chosen audio stream with ptime 20; every
    other m-line of the offer is refused with port 0, in the offer's order (RFC 3264 §6)."""
    lines = [
        "v=0",
        f"o=simphone {session_id} {version} IN IP4 {local_host}",
        "s=simphone",
        f"c=IN IP4 {local_host}",
        "t=0 0",
    ]
    dtmf = negotiated.dtmf_payload_type
    for index, media in enumerate(offer.media):
        if index != negotiated.media_index:
            first = media.formats[0] if media.formats else 0
            lines.append(f"m={media.media} 0 {media.proto} {first}")
            continue
        pts = [negotiated.payload_type] + ([dtmf] if dtmf is not None else [])
        lines += [f"m=audio {local_port} RTP/AVP {' '.join(map(str, pts))}",
                  f"a=rtpmap:{negotiated.payload_type} {negotiated.codec}/8000"]
        if dtmf is not None:
            lines += [f"a=rtpmap:{dtmf} telephone-event/8000", f"a=fmtp:{dtmf} 0-15"]
        lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()
