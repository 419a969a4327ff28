"""One place that knows what a secret looks like in an error message or a log line.

Error texts come from libraries we do not control: aiohttp puts the request URL (with
``corpsecret=`` or ``access_token=``) into its exceptions, pydantic echoes the bad
value. Everything that is logged or stored as an error goes through :func:`redact`, so
a secret can leak only through a path that forgot to call it — and the structlog
processor :func:`redact_event` covers the log side even then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

MASK = "***"

#: Query/JSON/header names whose values are credentials. Matched case-insensitively,
#: with ``-``/``_`` both accepted (``access_token``, ``x-acs-dingtalk-access-token``).
SECRET_NAMES = (
    "corpsecret",
    "secret",
    "appsecret",
    "app_secret",
    "client_secret",
    "clientsecret",
    "access_token",
    "accesstoken",
    "x-acs-dingtalk-access-token",
    "token",
    "sign",
    "signature",
    "msg_signature",
    "key",
    "password",
    "encoding_aes_key",
    "encodingaeskey",
)

_NAMES = "|".join(sorted((re.escape(n).replace("_", "[-_]?") for n in SECRET_NAMES), key=len, reverse=True))
_VALUE = r"""(?P<value>[^\s&"',;)}\]]+)"""
# name=value: query strings, form bodies, keyword reprs
_ASSIGN = re.compile(rf"(?i)(?<![A-Za-z0-9])(?P<name>{_NAMES})(?P<sep>\s*=\s*){_VALUE}")
# "name": "value" / 'name': 'value': JSON bodies and dict reprs (a quoted name, so prose
# such as "accessToken: network error" is left alone)
_QUOTED = re.compile(rf"""(?i)(?P<name>["']({_NAMES})["'])(?P<sep>\s*:\s*["']?){_VALUE}""")
# header lines
_HEADER = re.compile(rf"(?i)(?P<name>x-acs-dingtalk-access-token|authorization)(?P<sep>\s*:\s*(?:bearer\s+)?){_VALUE}")
# scheme://user:password@host
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@/\s]+)(?P<at>@)")


def redact(text: str) -> str:
    """``text`` with credential values replaced by ``***`` (names are kept, for diagnosis)."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: m["head"] + MASK + m["at"], text)
    for pattern in (_ASSIGN, _QUOTED, _HEADER):
        text = pattern.sub(lambda m: m["name"] + m["sep"] + MASK, text)
    return text


def redact_url(url: str) -> str:
    """A URL safe to show: password and credential query values masked."""
    return redact(url)


def redact_value(value: Any) -> Any:
    """Strings redacted; containers redacted element-wise (one level is what logs carry)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every string in the event (including a formatted traceback) redacted."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact_value(value)
    return event_dict
