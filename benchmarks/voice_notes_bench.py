"""Voice memos end to end, default vs previous speech configuration side by side in one run.

Part 1 (quality, one child process per configuration so peak RSS is that configuration's
alone): every memo of each voice set is transcribed the way the voice preprocessor does it
(``memo_hotwords``: the lexicon's, or with ``--rep-accounts N`` a simulated rep's accounts first, see
``simulated_rep``; then ``repair_transcript``), a note is extracted with the memo's own ``now``,
and the transcripts/notes are scored with ``score_voice.py`` (CER) and ``score_notes.py``
(voice → note overall). The sets default to the shared dev memos (voice-dev), the synthetic dev
set (tests/data/voice-gen-dev) and the synthetic blind set (tests/data/voice-gen-blind).

Part 2 (latency): a ~21 s memo (dev memos joined frame by frame — AMR-NB is a header plus
self-contained 20 ms frames) goes through the real pipeline — inbox, worker, download,
speech-to-text, extraction, storage, outbox, local delivery — ``--runs`` times per
configuration, the configurations alternating run by run so background load hits both alike.
Prints p50/p95 of arrival → delivered note card, the box's load average before and after, and
where the wait goes (median per step: inbox insert, claim/poll wait, download, speech queue, the
speech stages of ``Transcript.stages`` with each piece's encode/generate/align, handler,
extraction, storage + outbox + delivery) plus the process CPU seconds per memo, which a busy box
disturbs far less than wall time. The quality part prints CPU RTF next to RTF for the same reason.

    python benchmarks/voice_notes_bench.py [--runs 10] [--sets A.jsonl B.jsonl] [--configs default previous]
        [--no-quality] [--no-latency] [--out DIR] [--rep-accounts N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import ROOT, bench_config, running  # noqa: I001 - benchmarks/ is on sys.path
from stt_bench import CONFIGS, DEFAULT_SETS, voice_dir_for
from bot.messages import Inbound, Kind
from bot.pipeline.inbox import accept
from bot.runtime import Runtime
from handlers.notes.voice import RepTerms, memo_hotwords, repair_transcript

AMR_MAGIC = b"#!AMR\n"
TOOLS = ROOT.parent / "shared" / "tools"


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


def load_memos(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _config(tmp: str) -> object:
    return bench_config(f"sqlite+aiosqlite:///{tmp}/voice.db", pipeline={"workers": 1, "poll_interval": 0.05})


def _last_line(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().splitlines()
    return out[-1] if out else "(no output)"


def simulated_rep(memo: dict, memos: list[dict], accounts: int, rng: random.Random) -> RepTerms:
    """A rep whose recent records name the memo's hospital and contacts among ``accounts - 1``
    other hospitals (with their contacts) of the same set, in a random order.

    Why simulated: the voice sets carry no sales history, while the voice preprocessor puts the
    sender's own accounts and contacts first in the prompt (``rep_terms``). A rep mostly speaks of
    their own accounts, so the memo's own is among them; its place in the list is random, and
    only the first ``REP_TERM_CHARS`` characters reach the prompt, so it is often not there.
    """
    own = memo["expect"]["account"]
    pool = list({m["expect"]["account"]: m["expect"]["contacts"] for m in memos
                 if m["expect"]["account"] and m["expect"]["account"] != own}.items())
    rows = rng.sample(pool, min(max(0, accounts - (1 if own else 0)), len(pool)))
    if own:
        rows.append((own, memo["expect"]["contacts"]))
    rng.shuffle(rows)
    return RepTerms([t for account, contacts in rows for t in (account, *contacts)], [])


async def _quality(name: str, sets: list[Path], out_dir: Path, rep_accounts: int = 0) -> dict:
    from nlp.speech import create_stt  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        async with running(_config(tmp)) as runtime:
            app = runtime.app
            app.services._stt = create_stt(CONFIGS[name])  # noqa: SLF001 - the configuration under test
            extractor = app.services.extractor
            result: dict = {"sets": {}}
            for voice in sets:
                memos, folder = load_memos(voice), voice_dir_for(voice)
                preds, transcripts = [], []
                audio_s = stt_s = cpu_s = 0.0
                rng = random.Random(16)  # the same simulated reps for every configuration
                for memo in memos:
                    # what the voice preprocessor passes: the rep's terms (none, or simulated), the lexicon's
                    rep = simulated_rep(memo, memos, rep_accounts, rng) if rep_accounts else RepTerms([], [])
                    hotwords = memo_hotwords(app, rep)
                    started, cpu = time.perf_counter(), time.process_time()
                    tr = await app.services.stt.transcribe((folder / memo["file"]).read_bytes(), hotwords=hotwords)
                    stt_s += time.perf_counter() - started
                    cpu_s += time.process_time() - cpu  # all threads: comparable on a busy box
                    audio_s += tr.audio_seconds
                    text = repair_transcript(app, tr.text)  # exactly what the voice preprocessor does
                    note = extractor.extract(text, datetime.fromisoformat(memo["now"]))
                    preds.append({"id": memo["id"], **note.to_dict()})
                    transcripts.append({"id": memo["id"], "file": memo["file"], "text": text})
                stem = f"{voice.stem}.{name}"
                pred_file, tr_file = out_dir / f"{stem}.notes.jsonl", out_dir / f"{stem}.transcripts.jsonl"
                pred_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
                tr_file.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in transcripts),
                                   encoding="utf-8")
                result["sets"][voice.stem] = {
                    "memos": len(memos), "rtf": stt_s / audio_s if audio_s else 0.0,
                    "cpu_rtf": cpu_s / audio_s if audio_s else 0.0,
                    "cer": _last_line([sys.executable, str(TOOLS / "score_voice.py"), str(voice), str(tr_file)]),
                    "notes": _last_line([sys.executable, str(TOOLS / "score_notes.py"), str(voice), str(pred_file)]),
                }
            app.services.close()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _quality_child(name: str, sets: list[Path], out_dir: Path, rep_accounts: int, queue: mp.Queue) -> None:
    queue.put(asyncio.run(_quality(name, sets, out_dir, rep_accounts)))


def quality(name: str, sets: list[Path], out_dir: Path, rep_accounts: int = 0) -> dict:
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_quality_child, args=(name, sets, out_dir, rep_accounts, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


class _Timeline:
    """When each step of one memo's trip happened (perf_counter), filled by the wrappers below."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stages: tuple[tuple[str, float], ...] = ()
        self.stt_seconds = 0.0

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())
        self.cpu.setdefault(name, time.process_time())

    def cpu_seconds(self) -> float:
        """CPU time of this process (all threads) from arrival to delivery: robust to other load."""
        return self.cpu["delivered"] - self.cpu["arrival"]

    def breakdown(self) -> list[tuple[str, float]]:
        """Consecutive steps of arrival → note card; they add up to the whole wait."""
        m = self.marks
        rows = [
            ("inbox insert (accept)", m["accepted"] - m["arrival"]),
            ("claim / poll wait", m["fetch"] - m["accepted"]),
            ("download (fetch_media)", m["fetched"] - m["fetch"]),
            ("speech queue wait", (m["stt_done"] - m["stt_start"]) - self.stt_seconds),
        ]
        rows += [(f"speech: {name}", seconds) for name, seconds in self.stages if "." not in name]
        rows.append(("speech: other", self.stt_seconds - sum(v for k, v in self.stages if "." not in k)))
        rows += [("repair + handler until extraction", m["extract"] - m["stt_done"]),
                 ("extraction", m["extracted"] - m["extract"]),
                 ("storage + outbox + delivery", m["delivered"] - m["extracted"])]
        return rows

    def pieces(self) -> list[tuple[str, float]]:
        return [(name, seconds) for name, seconds in self.stages if "." in name]


class _TimedSpeech:
    """The service under test, noting when the voice preprocessor called it and what it reported."""

    def __init__(self, stt: object, timeline: Callable[[], _Timeline]) -> None:
        self._stt = stt
        self._timeline = timeline

    async def transcribe(self, audio: bytes, *, hotwords: Sequence[str] = ()) -> object:
        line = self._timeline()
        line.mark("stt_start")
        transcript = await self._stt.transcribe(audio, hotwords=hotwords)  # type: ignore[attr-defined]
        line.mark("stt_done")
        line.stages, line.stt_seconds = transcript.stages, transcript.seconds
        return transcript


async def latency(names: list[str], memo: Path, runs: int) -> tuple[dict[str, list[float]],
                                                                    dict[str, list[_Timeline]]]:
    """Arrival → delivered note card, configurations alternating run by run, with each run's timeline."""
    from nlp.speech import create_stt  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        async with running(_config(tmp)) as runtime:
            app = runtime.app
            current: list[_Timeline] = [_Timeline()]
            services = {name: create_stt(CONFIGS[name]) for name in names}
            for stt in services.values():
                await stt.warmup()
            delivered: dict[str, float] = {}
            waiting: dict[str, asyncio.Event] = {}

            def on_delivery(out, text) -> None:  # type: ignore[no-untyped-def]
                if "已记录" in text or "语音" in text:
                    for k, ev in waiting.items():
                        if not ev.is_set():
                            delivered[k] = time.perf_counter()
                            current[0].mark("delivered")
                            ev.set()
                            break

            app.channels["local"].add_listener(on_delivery)  # type: ignore[attr-defined]
            channel = app.channels["local"]
            fetch = channel.fetch_media  # type: ignore[attr-defined]

            async def timed_fetch(ref: str, fmt: str) -> bytes:
                current[0].mark("fetch")
                data = await fetch(ref, fmt)
                current[0].mark("fetched")
                return data

            channel.fetch_media = timed_fetch  # type: ignore[attr-defined]
            extractor = app.services.extractor
            extract = extractor.extract

            def timed_extract(*args: object, **kwargs: object) -> object:
                current[0].mark("extract")
                note = extract(*args, **kwargs)
                current[0].mark("extracted")
                return note

            extractor.extract = timed_extract  # type: ignore[method-assign]
            latencies: dict[str, list[float]] = {name: [] for name in names}
            timelines: dict[str, list[_Timeline]] = {name: [] for name in names}
            for i in range(runs + 1):  # run 0 of each warms the pipeline; not counted
                for name in names:
                    app.services._stt = _TimedSpeech(services[name], lambda: current[0])  # noqa: SLF001
                    key = f"{name}-{i}"
                    current[0] = line = _Timeline()
                    waiting[key] = asyncio.Event()
                    started = time.perf_counter()
                    line.mark("arrival")
                    await accept(app, Inbound(platform="local", message_id=uuid.uuid4().hex, sender="zhangwei",
                                              kind=Kind.VOICE, conversation="zhangwei", media=str(memo),
                                              media_format="amr"))
                    line.mark("accepted")
                    await asyncio.wait_for(waiting[key].wait(), timeout=300)
                    if i:
                        latencies[name].append(delivered[key] - started)
                        timelines[name].append(line)
            app.services._stt = None  # noqa: SLF001
            for stt in services.values():
                stt.close()
    return latencies, timelines


def print_breakdown(names: list[str], timelines: dict[str, list[_Timeline]]) -> None:
    """Median seconds of each step, configurations side by side (medians need not add up exactly)."""
    names = [n for n in names if timelines.get(n)]
    if not names:
        return
    print("where arrival → note card goes (median seconds over the runs):")
    print(f"  {'step':<36}" + "".join(f"{n:>14}" for n in names))
    steps = [step for step, _ in timelines[names[0]][0].breakdown()]
    table = {n: [dict(t.breakdown()) for t in timelines[n]] for n in names}
    for step in dict.fromkeys([*steps, *(s for n in names for s, _ in timelines[n][0].breakdown())]):
        cells = [statistics.median(row.get(step, 0.0) for row in table[n]) for n in names]
        print(f"  {step:<36}" + "".join(f"{c:>14.3f}" for c in cells))
    totals = [statistics.median(sum(v for _, v in t.breakdown()) for t in timelines[n]) for n in names]
    print(f"  {'total':<36}" + "".join(f"{c:>14.3f}" for c in totals))
    cpu = [statistics.median(t.cpu_seconds() for t in timelines[n]) for n in names]
    print(f"  {'CPU seconds, all threads':<36}" + "".join(f"{c:>14.3f}" for c in cpu))
    print("  pieces (inside speech: decode, each on its own core):")
    piece_steps = dict.fromkeys(s for n in names for t in timelines[n] for s, _ in t.pieces())
    for step in piece_steps:
        cells = [statistics.median(dict(t.pieces()).get(step, 0.0) for t in timelines[n]) for n in names]
        print(f"    {step:<34}" + "".join(f"{c:>14.3f}" for c in cells))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", type=Path, default=DEFAULT_SETS)
    parser.add_argument("--configs", nargs="+", default=["default", "previous"], choices=sorted(CONFIGS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--out", default="", help="keep prediction files here")
    parser.add_argument("--rep-accounts", type=int, default=0,
                        help="quality with a simulated per-rep prompt: the memo's hospital among this many "
                             "of the rep's accounts (0: no rep history, the lexicon's prompt)")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cpus", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.out or tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows: dict[str, dict] = {}
        if not args.no_quality:
            for name in args.configs:
                rows[name] = quality(name, args.sets, out_dir, args.rep_accounts)
                print(f"{name}: quality measured (peak RSS {rows[name]['peak_rss_mb']:.0f} MB)", flush=True)
        lat: dict[str, list[float]] = {}
        timelines: dict[str, list[_Timeline]] = {}
        seconds = 0.0
        if not args.no_latency:
            dev = args.sets[0]
            files, seconds = pick_20s(load_memos(dev), voice_dir_for(dev))
            long_memo = out_dir / "memo-20s.amr"
            long_memo.write_bytes(join_amr(files))
            lat, timelines = asyncio.run(latency(args.configs, long_memo, args.runs))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.rep_accounts and rows:
        print(f"quality prompts: a simulated rep with {args.rep_accounts} accounts per memo (simulated_rep)")
    print_breakdown(args.configs, timelines)
    for name in args.configs:
        print(f"== {name}: {CONFIGS[name]}")
        if name in rows:
            print(f"  peak RSS (runtime + model, whole quality run) {rows[name]['peak_rss_mb']:.0f} MB")
            for set_name, r in rows[name]["sets"].items():
                print(f"  {set_name:<18} {r['memos']:3d} memos  RTF {r['rtf']:.3f} (CPU {r['cpu_rtf']:.3f})  {r['cer']}  | notes: {r['notes']}")
        if name in lat:
            v = lat[name]
            print(f"  arrival → note card, {seconds:.1f} s memo, {len(v)} runs: p50 {statistics.median(v):.2f} s, "
                  f"p95 {p95(v):.2f} s, max {max(v):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
