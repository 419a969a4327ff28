"""Bounded parsing of untrusted bodies: malformed input must be a 4xx, never a 500.

``json.loads`` recurses once per nesting level, so ``[[[[…`` a few thousand deep raises
``RecursionError`` (an unhandled 500), and a document just under the interpreter's
limit is stored and later crashes whatever walks it. :func:`load_json` turns both into a
:class:`BodyError` and rejects anything nested deeper than real payloads ever are.
"""

from __future__ import annotations

import json
from typing import Any

#: DingTalk robot bodies nest 4 deep (richText items); local bodies 1.
MAX_JSON_DEPTH = 32


class BodyError(ValueError):
    """The body is not acceptable; the text is safe to return to the caller."""


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests deeper than ``limit`` (iterative: deep input cannot recurse us)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def load_json(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON from an untrusted body, or raise :class:`BodyError`."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BodyError("body must be JSON") from None
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {max_depth} levels") from None
    if depth_exceeds(value, max_depth):
        raise BodyError(f"JSON nested deeper than {max_depth} levels")
    return value
