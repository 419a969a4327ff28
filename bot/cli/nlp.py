"""CLI sub-commands: ``extract`` and ``lexicon check`` (wired into the ``genjin`` script by the lead)."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any, TextIO

from nlp.extract import Extractor
from nlp.lexicon import LexiconError, check_lexicon, load_lexicon


def register_commands(subparsers: Any) -> None:
    """Add ``extract`` and ``lexicon check`` to an argparse sub-parsers object."""
    ex = subparsers.add_parser("extract", help="extract a follow-up note from a rep message")
    ex.add_argument("--now", help="ISO 8601 time the message was sent (default: now)")
    ex.add_argument("--tz", default="Asia/Shanghai", help="time zone for naive times (default: Asia/Shanghai)")
    ex.add_argument("--lexicon", metavar="DIR", help="extra lexicon directory that extends/overrides the packaged one")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--json", metavar="TEXT", help="one message; prints one JSON object")
    src.add_argument("--jsonl", metavar="FILE", help='lines of {"id","text","now"?}; "-" reads stdin')
    ex.set_defaults(func=_extract)

    lx = subparsers.add_parser("lexicon", help="lexicon tools")
    lx_sub = lx.add_subparsers(dest="lexicon_command", required=True)
    check = lx_sub.add_parser("check", help="validate the lexicon and report overlapping keywords")
    check.add_argument("--lexicon", metavar="DIR", help="extra lexicon directory to validate with the packaged one")
    check.set_defaults(func=_check)


def _parse_now(value: str | None, where: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{where}: not an ISO 8601 time: {value!r}") from None


def _emit(obj: dict[str, Any], out: TextIO) -> None:
    out.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _extract(args: argparse.Namespace) -> int:
    out = _utf8(sys.stdout)
    try:
        lexicon = load_lexicon(args.lexicon)
        extractor = Extractor(lexicon, tz=args.tz)
        default_now = _parse_now(args.now, "--now")
    except (LexiconError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # e.g. unknown time zone
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is not None:
        _emit(extractor.extract(args.json, default_now).to_dict(), out)
        return 0
    status = 0
    stream = sys.stdin if args.jsonl == "-" else open(args.jsonl, encoding="utf-8")
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    raise ValueError('expected an object with a "text" string')
                now = _parse_now(item.get("now"), f"line {lineno}: now") or default_now
            except ValueError as exc:
                print(f"error: {args.jsonl}:{lineno}: {exc}", file=sys.stderr)
                status = 1
                continue
            note = extractor.extract(item["text"], now)
            _emit({"id": item.get("id"), **note.to_dict()}, out)
    out.flush()
    return status


def _check(args: argparse.Namespace) -> int:
    try:
        lexicon = load_lexicon(args.lexicon)
    except LexiconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    issues = check_lexicon(lexicon)
    for issue in issues:
        print(f"warning: {issue}")
    print(f"lexicon OK ({len(lexicon.terms())} terms, {len(issues)} warnings)")
    return 0


def _utf8(stream: TextIO) -> TextIO:
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8")
    return stream
