"""Speech-to-text benchmark: default vs previous configuration side by side, on several voice sets.

usage: python benchmarks/stt_bench.py [--sets A.jsonl ...] [--configs default previous ...]
         [--runs 10] [--limit N] [--pred-out DIR] [--max-cer 0.15] [--show-errors]

For each configuration (``CONFIGS`` below; "previous" is the default before issue 16 round 4,
"before-window" before the latency work of part 3, "before-16" the configuration before issue 16) a
child process loads the model, transcribes every memo of every set and reports CER (the
definition of score_voice.py, nlp/speech/metrics.py), per-memo latency p50/p95, RTF, load time
and peak RSS (ru_maxrss: that configuration alone). Then, in one process holding all
configurations, a ~21 s memo (dev memos joined frame by frame) is transcribed ``--runs`` times per
configuration, alternating run by run so background load hits all alike: p50/p95 of that are
the recogniser's share of arrival → note card. The load average is printed before and after.
``--show-errors`` prints, per memo with errors, what was said and what was heard (``[said→heard]``
for each differing stretch) for the first configuration, to find error classes (never tune on
the blind set).

Sets: the shared dev memos (voice-dev), the synthetic dev set (tests/data/voice-gen-dev) and the
synthetic blind set (tests/data/voice-gen-blind, never tuned on). Each JSONL names its memos'
``file``; the audio sits in the directory named like the JSONL (``voice-dev.jsonl`` → ``voice-dev/``).

Hotwords: the lexicon's (``load_lexicon().hotwords()``), as the voice pipeline passes them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nlp.speech import SpeechConfig, SpeechError, create_stt  # noqa: E402
from nlp.speech.metrics import char_errors  # noqa: E402

DEFAULT_SETS = [
    ROOT.parent / "shared" / "corpus" / "voice-dev.jsonl",
    ROOT / "tests" / "data" / "voice-gen-dev.jsonl",
    ROOT / "tests" / "data" / "voice-gen-blind.jsonl",
]
_DEFAULT = SpeechConfig()
# "previous": the default before issue 16 round 4 — no place/hospital-type/date repairs, no output
# token cap, glibc's malloc arenas. (malloc_arenas is process-wide: it is compared in the quality
# part, one process per configuration; the latency part holds both in one process.)
PREVIOUS = replace(_DEFAULT, names_and_dates=False, max_tokens_per_second=0.0, malloc_arenas=0)
# "before-window": before the latency work of issue 16 part 3 (full 30 s encoder window).
BEFORE_WINDOW = replace(PREVIOUS, encoder_min_seconds=30.0)
# The configuration before issue 16: one piece per memo, beam 5 at any length, no word probabilities,
# no warm-up decode, plain pinyin term correction only, no loop/prompt-leak repair, no heap trimming.
BEFORE_16 = replace(BEFORE_WINDOW, parallel_pieces=1, long_beam_size=_DEFAULT.beam_size, word_probabilities=False,
                    warm_on_load=False, context_correction=False, repair_loops=False, trim_memory=False,
                    spell_numbers=False)
CONFIGS: dict[str, SpeechConfig] = {
    "default": _DEFAULT,
    "previous": PREVIOUS,
    "before-window": BEFORE_WINDOW,
    "before-16": BEFORE_16,
    "default-nonames": replace(_DEFAULT, names_and_dates=False),
    "default-notokencap": replace(_DEFAULT, max_tokens_per_second=0.0),
    "default-arenas": replace(_DEFAULT, malloc_arenas=0),
    "default-arenas1": replace(_DEFAULT, malloc_arenas=1),
    "default-beam3": replace(_DEFAULT, beam_size=3),
    "default-beam5long": replace(_DEFAULT, long_beam_size=_DEFAULT.beam_size),
    "default-beam1": replace(_DEFAULT, beam_size=1),
    "default-noprob": replace(_DEFAULT, word_probabilities=False),
    "default-nocontext": replace(_DEFAULT, context_correction=False),
    "default-prompt80": replace(_DEFAULT, prompt_hotword_chars=80),
    "default-nohotprompt": replace(_DEFAULT, prompt_hotword_chars=0),
    "default-1piece": replace(_DEFAULT, parallel_pieces=1),
    "default-noloops": replace(_DEFAULT, repair_loops=False),
    "default-nonumbers": replace(_DEFAULT, spell_numbers=False),
}


def voice_dir_for(voice: Path) -> Path:
    """``x/voice-dev.jsonl`` → ``x/voice-dev/`` (else the JSONL's own directory)."""
    folder = voice.with_suffix("")
    return folder if folder.is_dir() else voice.parent


def bench_hotwords() -> list[str]:
    """The lexicon's hotwords, exactly as the voice pipeline passes them."""
    from nlp.lexicon import load_lexicon  # noqa: PLC0415

    return load_lexicon().hotwords()


def load_memos(path: Path, limit: int = 0) -> list[dict]:
    memos = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return memos[:limit] if limit else memos


def pick_20s(memos: list[dict]) -> list[dict]:
    chosen, total = [], 0.0
    for memo in sorted(memos, key=lambda m: -m["seconds"]):
        if total + memo["seconds"] <= 21.0:
            chosen.append(memo)
            total += memo["seconds"]
        if total >= 19.0:
            break
    return chosen


def memo_20s(voice: Path) -> bytes:
    folder = voice_dir_for(voice)
    return b"#!AMR\n" + b"".join((folder / m["file"]).read_bytes()[6:] for m in pick_20s(load_memos(voice)))


def _run(config: SpeechConfig, sets: list[Path], limit: int, hotwords: list[str], pred_out: Path | None,
         queue: mp.Queue) -> None:
    stt = create_stt(config)
    stt.engine()
    result: dict = {"load_s": stt.load_seconds or 0.0, "sets": {}}
    for voice in sets:
        errors = chars = 0
        audio = wall = 0.0
        walls: list[float] = []
        failures: dict[str, str] = {}
        preds = []
        folder = voice_dir_for(voice)
        for memo in load_memos(voice, limit):
            try:
                tr = stt.transcribe_sync(folder / memo["file"], hotwords)
                text = tr.text
                audio, wall = audio + tr.audio_seconds, wall + tr.seconds
                walls.append(tr.seconds)
            except SpeechError as exc:
                text, failures[memo["id"]] = "", exc.reason
            preds.append({"id": memo["id"], "file": memo["file"], "text": text})
            e, n = char_errors(memo["spoken"], text)
            errors, chars = errors + e, chars + n
            if e:
                result.setdefault("errors", {}).setdefault(voice.stem, []).append((memo["id"], e, memo["spoken"], text))
        if pred_out is not None:
            (pred_out / f"{voice.stem}.jsonl").write_text(
                "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
        result["sets"][voice.stem] = {
            "cer": errors / chars if chars else 0.0, "errors": errors, "chars": chars, "memos": len(preds),
            "rtf": wall / audio if audio else 0.0, "p50": statistics.median(walls) if walls else 0.0,
            "p95": p95(walls) if walls else 0.0, "failures": failures,
        }
    stt.close()
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(config: SpeechConfig, sets: list[Path], limit: int, hotwords: list[str],
            pred_out: Path | None = None) -> dict:
    """Run one configuration in a fresh process (spawn: clean RSS, no shared model)."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(config, sets, limit, hotwords, pred_out, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def latency(configs: dict[str, SpeechConfig], memo: bytes, hotwords: list[str], runs: int) -> dict[str, list[float]]:
    """Wall time of ``transcribe_sync`` on ``memo``, configurations alternating run by run."""
    services = {name: create_stt(cfg) for name, cfg in configs.items()}
    for stt in services.values():
        stt.engine()
    times: dict[str, list[float]] = {name: [] for name in services}
    for _ in range(runs):
        for name, stt in services.items():
            started = time.perf_counter()
            stt.transcribe_sync(memo, hotwords)
            times[name].append(time.perf_counter() - started)
    for stt in services.values():
        stt.close()
    return times


def diff_line(said: str, heard: str) -> str:
    """``said`` with each differing stretch shown as ``[said→heard]``."""
    from difflib import SequenceMatcher  # noqa: PLC0415

    out = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, said, heard, autojunk=False).get_opcodes():
        out.append(said[i1:i2] if tag == "equal" else f"[{said[i1:i2]}→{heard[j1:j2]}]")
    return "".join(out)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", type=Path, default=[s for s in DEFAULT_SETS if s.is_file()])
    ap.add_argument("--configs", nargs="+", default=["default", "previous"], choices=sorted(CONFIGS))
    ap.add_argument("--runs", type=int, default=10, help="runs per configuration of the ~21 s memo (0: skip)")
    ap.add_argument("--limit", type=int, default=0, help="memos per set (0: all)")
    ap.add_argument("--pred-out", type=Path, default=None, help="directory for per-run prediction JSONL")
    ap.add_argument("--max-cer", type=float, default=0.15, help="on the first set, for the default configuration")
    ap.add_argument("--show-errors", action="store_true", help="per-memo said/heard diffs (first configuration)")
    args = ap.parse_args(argv)

    hotwords = bench_hotwords()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {mp.cpu_count()} cpus; "
          f"{len(hotwords)} hotwords", flush=True)
    results = {}
    for name in args.configs:
        out = None
        if args.pred_out:
            out = args.pred_out / name
            out.mkdir(parents=True, exist_ok=True)
        results[name] = measure(CONFIGS[name], args.sets, args.limit, hotwords, out)
        print(f"  {name}: measured", flush=True)
    if args.show_errors:
        first = args.configs[0]
        for set_name, rows in results[first].get("errors", {}).items():
            print(f"== {first} errors on {set_name}")
            for memo_id, count, said, heard in rows:
                print(f"  {memo_id} ({count}): {diff_line(said, heard)}")
    lat = latency({n: CONFIGS[n] for n in args.configs}, memo_20s(args.sets[0]), hotwords, args.runs) if args.runs else {}
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = f"{'set':<18}" + "".join(f"{name:>34}" for name in args.configs)
    print(header)
    for voice in args.sets:
        cells = []
        for name in args.configs:
            r = results[name]["sets"][voice.stem]
            fail = f" fail{len(r['failures'])}" if r["failures"] else ""
            cells.append(f"CER {r['cer']:.3f} p50 {r['p50']:.2f} p95 {r['p95']:.2f}{fail}")
        print(f"{voice.stem:<18}" + "".join(f"{c:>34}" for c in cells))
    print(f"{'peak RSS MB':<18}" + "".join(f"{results[n]['peak_rss_mb']:>34.0f}" for n in args.configs))
    print(f"{'load s':<18}" + "".join(f"{results[n]['load_s']:>34.2f}" for n in args.configs))
    if lat:
        print(f"{'~21 s memo (s)':<18}" + "".join(
            f"{f'p50 {statistics.median(lat[n]):.2f} p95 {p95(lat[n]):.2f} ({len(lat[n])})':>34}" for n in args.configs))
    ok = True
    if "default" in results:
        ok = results["default"]["sets"][args.sets[0].stem]["cer"] <= args.max_cer
        print(f"default configuration CER on {args.sets[0].stem} {'OK, at most' if ok else 'ABOVE'} max {args.max_cer}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
