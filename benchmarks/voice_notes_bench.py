"""Voice memos end to end: transcript quality as notes, and arrival → note-card latency.

Part 1 transcribes every dev memo with the configured backend (the same call the voice
preprocessor makes, with the lexicon's hotwords), extracts a note from each transcript
with the memo's own ``now``, and scores the notes with ``score_notes.py`` and the
transcripts with ``score_voice.py``.

Part 2 sends a ~20 s memo (dev memos joined frame by frame — AMR-NB is a header plus
self-contained 20 ms frames) through the real pipeline — inbox, worker, download,
speech-to-text, extraction, storage, outbox, local delivery — and reports p50/p95 of
the time from arrival to the delivered note card.

    python benchmarks/voice_notes_bench.py [--corpus ../shared/corpus] [--runs 10] [--beam N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from harness import ROOT, bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from bot.messages import Inbound, Kind
from bot.pipeline.inbox import accept
from bot.runtime import Runtime
from handlers.notes.voice import repair_transcript

AMR_MAGIC = b"#!AMR\n"


def join_amr(files: list[Path]) -> bytes:
    body = b"".join(f.read_bytes()[len(AMR_MAGIC) :] for f in files)
    return AMR_MAGIC + body


def pick_20s(memos: list[dict], folder: Path) -> tuple[list[Path], float]:
    chosen: list[dict] = []
    total = 0.0
    for memo in sorted(memos, key=lambda m: -m["seconds"]):
        if total + memo["seconds"] <= 21.0:
            chosen.append(memo)
            total += memo["seconds"]
        if total >= 19.0:
            break
    return [folder / m["file"] for m in chosen], total


async def part1(runtime: Runtime, memos: list[dict], folder: Path, out_dir: Path) -> dict[str, float]:
    app = runtime.app
    stt = app.services.stt
    hotwords = app.services.lexicon.hotwords()
    extractor = app.services.extractor
    preds, transcripts = [], []
    audio_s = stt_s = 0.0
    for memo in memos:
        started = time.perf_counter()
        result = await stt.transcribe((folder / memo["file"]).read_bytes(), hotwords=hotwords)
        stt_s += time.perf_counter() - started
        audio_s += result.audio_seconds
        text = repair_transcript(app, result.text)  # exactly what the voice preprocessor does
        note = extractor.extract(text, datetime.fromisoformat(memo["now"]))
        preds.append({"id": memo["id"], **note.to_dict()})
        transcripts.append({"id": memo["id"], "file": memo["file"], "text": text})
    pred_file, tr_file = out_dir / "voice-notes-pred.jsonl", out_dir / "voice-transcripts.jsonl"
    pred_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    tr_file.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in transcripts), encoding="utf-8")
    return {"memos": len(memos), "audio_seconds": audio_s, "stt_seconds": stt_s, "rtf": stt_s / audio_s}


async def part2(runtime: Runtime, memo: Path, runs: int) -> list[float]:
    app = runtime.app
    delivered: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    def on_delivery(out, text) -> None:  # type: ignore[no-untyped-def]
        if "已记录" in text or "语音" in text:
            for k, ev in waiting.items():
                if not ev.is_set():
                    delivered[k] = time.perf_counter()
                    ev.set()
                    break

    app.channels["local"].add_listener(on_delivery)  # type: ignore[attr-defined]
    latencies: list[float] = []
    for i in range(runs):
        key = f"bench-{i}"
        waiting[key] = asyncio.Event()
        started = time.perf_counter()
        await accept(
            app,
            Inbound(
                platform="local", message_id=uuid.uuid4().hex, sender="zhangwei", kind=Kind.VOICE,
                conversation="zhangwei", media=str(memo), media_format="amr",
            ),
        )
        await asyncio.wait_for(waiting[key].wait(), timeout=300)
        latencies.append(delivered[key] - started)
    return latencies


async def main_async(args: argparse.Namespace) -> int:
    corpus = Path(args.corpus)
    memos = [json.loads(line) for line in (corpus / "voice-dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    folder = corpus / "voice-dev"
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        speech = {"backend": args.backend}
        if args.beam:
            speech["beam_size"] = args.beam
        config = bench_config(
            f"sqlite+aiosqlite:///{tmp}/voice.db", pipeline={"workers": 1, "poll_interval": 0.05}, speech=speech
        )
        async with running(config) as runtime:
            load_started = time.perf_counter()
            await runtime.app.services.stt.transcribe((folder / memos[0]["file"]).read_bytes())
            load = time.perf_counter() - load_started
            stats = await part1(runtime, memos, folder, out_dir)
            files, seconds = pick_20s(memos, folder)
            long_memo = out_dir / "memo-20s.amr"
            long_memo.write_bytes(join_amr(files))
            latencies = await part2(runtime, long_memo, args.runs)
        print(f"voice → notes ({args.backend}, beam {args.beam or 'default'})")
        print(f"  first call incl. model load  {load:.2f} s")
        print(f"  dev memos                    {stats['memos']} ({stats['audio_seconds']:.0f} s audio), RTF {stats['rtf']:.3f}")
        tools = corpus.parent / "tools"
        voice = subprocess.run([sys.executable, str(tools / "score_voice.py"), str(corpus / "voice-dev.jsonl"), str(out_dir / "voice-transcripts.jsonl")], capture_output=True, text=True)
        print("  transcripts (score_voice.py): " + " | ".join(voice.stdout.strip().splitlines()[-2:]))
        notes = subprocess.run([sys.executable, str(tools / "score_notes.py"), str(corpus / "voice-dev.jsonl"), str(out_dir / "voice-notes-pred.jsonl")], capture_output=True, text=True)
        print("  notes from voice (score_notes.py):")
        for line in notes.stdout.strip().splitlines():
            print("    " + line)
        print(f"  arrival → note card, {seconds:.1f} s memo, {len(latencies)} runs: "
              f"p50 {statistics.median(latencies):.2f} s, p95 {sorted(latencies)[max(0, int(round(0.95 * len(latencies))) - 1)]:.2f} s, "
              f"max {max(latencies):.2f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--backend", default="faster-whisper", choices=["faster-whisper", "openai-whisper"])
    parser.add_argument("--beam", type=int, default=0, help="beam size (default: the configured one)")
    parser.add_argument("--out", default="", help="keep prediction files here")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
