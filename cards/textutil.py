"""Small text tools shared by the renderers: clipping to a platform limit and escaping.

Cards carry plain text (a rep's words, a playbook written by sales ops); only the
renderers know the markup of a platform, so they are the ones that escape. Clipping
never fails and never splits a character: a limit is a limit, the rest is dropped and
marked with an ellipsis so nobody mistakes a clipped value for the whole.
"""

from __future__ import annotations

import re
from urllib.parse import quote

ELLIPSIS = "…"

# Characters that start markup in WeCom/DingTalk markdown (bold, code, links, HTML
# tags such as <font>). They are swapped for their full-width twins, which read the
# same to a person but mean nothing to the markdown parser. Neither platform documents
# a backslash escape, so replacing is the only portable way.
_MD_TRANSLATE = str.maketrans(
    {
        "*": "＊",
        "`": "｀",
        "[": "［",
        "]": "］",
        "<": "＜",
        ">": "＞",
        "|": "｜",
        "~": "～",
        "\\": "＼",
    }
)
# At the start of a line these make a heading / a quote / a horizontal rule.
_LINE_START = re.compile(r"^(\s*)([#>＞]|-{3,}|={3,})", re.MULTILINE)
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![\w/])_|_(?![\w/])")
_WS = re.compile(r"\s+")
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


_TAG_TRANSLATE = str.maketrans({"<": "＜", ">": "＞"})


def escape_text_tags(text: str) -> str:
    """Make ``<a href=…>`` and other tags inert in a WeCom *text* message.

    WeCom renders ``<a href>`` in plain text messages as a link, and reply texts quote
    what reps typed (account names, notes) to other reps. The bot itself never sends
    links in text, so every ``<``/``>`` is swapped for its full-width twin, as cards do.
    """
    return text.translate(_TAG_TRANSLATE)


def clean(text: str) -> str:
    """Drop control characters and normalise line ends (``\\r\\n`` → ``\\n``)."""
    return _CTRL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))


def single_line(text: str) -> str:
    """Collapse newlines and runs of spaces: for titles, labels and button texts."""
    return _WS.sub(" ", clean(text)).strip()


def clip(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, ending in … when something was cut."""
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    if max_chars == 1:
        return ELLIPSIS
    return text[: max_chars - 1].rstrip() + ELLIPSIS


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def clip_bytes(text: str, max_bytes: int, *, ellipsis: bool = True) -> str:
    """At most ``max_bytes`` UTF-8 bytes, cut at a character boundary."""
    if utf8_len(text) <= max_bytes:
        return text
    mark = ELLIPSIS if ellipsis else ""
    budget = max_bytes - utf8_len(mark)
    if budget <= 0:
        return ""
    cut = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return cut.rstrip() + mark


def escape_markdown(text: str) -> str:
    """Make user text inert inside WeCom/DingTalk markdown (keeps line breaks)."""
    text = clean(text).translate(_MD_TRANSLATE)
    text = _LINE_START.sub(lambda m: m.group(1) + _fullwidth(m.group(2)), text)
    return _UNDERSCORE_EMPHASIS.sub("＿", text)


def _fullwidth(token: str) -> str:
    return token.replace("#", "＃").replace(">", "＞").replace("-", "－").replace("=", "＝")


_SAFE_URL = re.compile(r"^(https?|dtmd)://[^\s]+$", re.IGNORECASE)


def safe_url(url: str) -> str:
    """The URL if it is http(s)/dtmd and cannot break a ``[label](url)`` link, else ''.

    Spaces, parentheses, quotes and angle brackets are percent-encoded so a URL
    cannot end the link early or open an HTML attribute.
    """
    url = clean(url).strip()
    if not url:
        return ""
    url = quote(url, safe=":/?#@!$&+,;=%-._~")
    return url if _SAFE_URL.match(url) else ""
