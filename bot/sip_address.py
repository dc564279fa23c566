"""An agent's SIP address as the console and `waihu user` accept it: ``sip:`` or ``sips:``,
an optional user part, a host (name, IPv4 or bracketed IPv6) and an optional port.

Nothing else is accepted -- no URI parameters (``;transport=``), headers (``?``), display
names or angle brackets -- because the gateway dials the stored text as it is and a typo
should be refused when it is typed, not when a customer is waiting for the agent.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SCHEMES = ("sip", "sips")
# RFC 3261 user part without ';', '?' and '/', so that a parameter cannot hide in it.
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]{1,64}")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
EXAMPLE = "sip:1001@pbx.example.com"
MAX_LENGTH = 200  # agents.sip_uri is String(200)


@dataclass(frozen=True)
class SipAddress:
    scheme: str
    user: str | None
    host: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> SipAddress:
        """*text* as a SIP address; ValueError saying what is wrong otherwise."""
        if len(text) > MAX_LENGTH:
            raise ValueError(f"a SIP address has at most {MAX_LENGTH} characters")
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in SCHEMES:
            raise ValueError(f"a SIP address starts with sip: or sips: (e.g. {EXAMPLE}), "
                             f"not {text!r}")
        for bad, what in ((";", "parameters (;...)"), ("?", "headers (?...)"),
                          ("<", "angle brackets"), (">", "angle brackets")):
            if bad in rest:
                raise ValueError(f"SIP address {text!r}: {what} are not accepted; give "
                                 f"only sip:user@host[:port]")
        if any(c.isspace() for c in rest):
            raise ValueError(f"SIP address {text!r} contains a space")
        user: str | None = None
        if "@" in rest:
            user, _, rest = rest.rpartition("@")
            if not _USER.fullmatch(user):
                raise ValueError(f"SIP address {text!r}: the user part before '@' is empty "
                                 "or holds characters a SIP user name cannot")
        host, port = _host_and_port(rest, text)
        return cls(scheme.lower(), user, host, port)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}"


def _host_and_port(hostport: str, text: str) -> tuple[str, int | None]:
    port_text: str | None
    if hostport.startswith("["):  # [IPv6]:port
        inside, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise ValueError(f"SIP address {text!r}: an IPv6 host needs its closing ']'")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise ValueError(f"SIP address {text!r}: [{inside}] is not an IPv6 address"
                             ) from None
        if after and not after.startswith(":"):
            raise ValueError(f"SIP address {text!r}: unexpected {after!r} after the host")
        host, port_text = f"[{inside}]", after[1:] if after else None
    else:
        host, colon, after = hostport.partition(":")
        port_text = after if colon else None
        _check_host(host, text)
    return host, None if port_text is None else _port(port_text, text)


def _check_host(host: str, text: str) -> None:
    if not host:
        raise ValueError(f"SIP address {text!r} has no host (e.g. {EXAMPLE})")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"SIP address {text!r}: {host} is not an IPv4 address"
                             ) from None
        return
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"SIP address {text!r}: {host!r} is not a host name")


def _port(port_text: str, text: str) -> int:
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"SIP address {text!r}: the port is a number from 1 to 65535, "
                         f"not {port_text!r}")
    return int(port_text)


def check_sip_address(text: str) -> str:
    """*text* stripped and checked (the stored form keeps the user's spelling)."""
    text = text.strip()
    SipAddress.parse(text)
    return text
