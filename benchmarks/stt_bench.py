"""Speech-to-text benchmark on the dev voice memos: CER, RTF, load time, peak RSS per backend.

usage: python benchmarks/stt_bench.py [--voice PATH.jsonl] [--backend faster-whisper openai-whisper]
         [--beam N ...] [--variants] [--limit N] [--pred-out DIR]

CER uses score_voice.py's definition (nlp/speech/metrics.py). Each backend runs in its own child
process so load time and peak RSS (ru_maxrss) are that backend's alone. ``--variants`` also
reports the ablations (no prompt / no hotwords / no correction / no t2s) for faster-whisper.

Hotwords: the lexicon's (``load_lexicon().hotwords()``), as the voice pipeline uses them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nlp.speech import SpeechConfig, SpeechError, create_stt  # noqa: E402
from nlp.speech.metrics import char_errors  # noqa: E402

DEFAULT_VOICE = ROOT.parent / "shared" / "corpus" / "voice-dev.jsonl"

def bench_hotwords() -> list[str]:
    """The lexicon's hotwords, exactly as the voice pipeline passes them."""
    from nlp.lexicon import load_lexicon  # noqa: PLC0415

    return load_lexicon().hotwords()


def _run(config: SpeechConfig, memos: list[dict], voice_dir: Path, hotwords: list[str], use_t2s: bool,
         pred_out: Path | None, queue: "mp.Queue[dict]") -> None:
    import nlp.speech.service as service  # noqa: PLC0415

    if not use_t2s:
        service.to_simplified = lambda text: text  # type: ignore[assignment]
    stt = create_stt(config)
    cpu0 = time.process_time()
    stt.engine()
    load = stt.load_seconds or 0.0
    errors = chars = 0
    audio = wall = 0.0
    failures: dict[str, str] = {}
    preds = []
    cpu1 = time.process_time()
    for memo in memos:
        path = voice_dir / memo["file"]
        try:
            result = stt.transcribe_sync(path, hotwords)
            text, audio, wall = result.text, audio + result.audio_seconds, wall + result.seconds
        except SpeechError as exc:
            text, failures[memo["id"]] = "", exc.reason
        preds.append({"id": memo["id"], "file": memo["file"], "text": text})
        e, n = char_errors(memo["spoken"], text)
        errors, chars = errors + e, chars + n
    cpu2 = time.process_time()
    if pred_out is not None:
        pred_out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8")
    stt.close()
    queue.put({
        "cer": errors / chars if chars else 0.0, "errors": errors, "chars": chars,
        "rtf": wall / audio if audio else 0.0, "cpu_rtf": (cpu2 - cpu1) / audio if audio else 0.0,
        "load_s": load, "load_cpu_s": cpu1 - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "failures": failures,
    })


def measure(name: str, config: SpeechConfig, memos: list[dict], voice_dir: Path, hotwords: list[str],
            use_t2s: bool = True, pred_out: Path | None = None) -> dict:
    """Run one configuration in a fresh process (spawn: clean RSS, no shared model)."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(config, memos, voice_dir, hotwords, use_t2s, pred_out, queue))
    proc.start()
    result = queue.get()
    proc.join()
    result["name"] = name
    print(f"{name:<44} CER {result['cer']:.4f} ({result['errors']}/{result['chars']})  RTF {result['rtf']:.3f}"
          f" (cpu {result['cpu_rtf']:.3f})  load {result['load_s']:.2f}s  peakRSS {result['peak_rss_mb']:.0f}MB"
          + (f"  failed {result['failures']}" if result["failures"] else ""), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voice", type=Path, default=DEFAULT_VOICE)
    ap.add_argument("--backend", nargs="+", default=["faster-whisper", "openai-whisper"])
    ap.add_argument("--beam", type=int, nargs="+", default=[SpeechConfig().beam_size])
    ap.add_argument("--compute-type", nargs="+", default=[SpeechConfig().compute_type],
                    help="faster-whisper compute types to compare (int8, float32, ...)")
    ap.add_argument("--variants", action="store_true", help="also run the ablations (faster-whisper)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--pred-out", type=Path, default=None, help="directory for per-run prediction JSONL")
    ap.add_argument("--max-cer", type=float, default=0.15)
    args = ap.parse_args(argv)

    memos = [json.loads(line) for line in args.voice.read_text(encoding="utf-8").splitlines() if line.strip()]
    memos = memos[: args.limit] if args.limit else memos
    voice_dir = args.voice.parent / "voice-dev" if (args.voice.parent / "voice-dev").is_dir() else args.voice.parent
    hotwords = bench_hotwords()
    seconds = sum(m.get("seconds", 0) for m in memos)
    print(f"{len(memos)} memos, {seconds:.0f}s audio, {len(hotwords)} hotwords, "
          f"{mp.cpu_count()} cpus", flush=True)
    if args.pred_out:
        args.pred_out.mkdir(parents=True, exist_ok=True)

    def out(name: str) -> Path | None:
        return args.pred_out / f"{name.replace(' ', '_')}.jsonl" if args.pred_out else None

    default_ok: bool | None = None  # None: the default configuration was not among the runs
    runs = [(b, beam, ct) for b in args.backend for beam in args.beam
            for ct in (args.compute_type if b == "faster-whisper" else ["float32"])]
    for backend, beam, compute_type in runs:
        config = SpeechConfig(backend=backend, beam_size=beam, compute_type=compute_type)  # type: ignore[arg-type]
        name = f"{backend} beam{beam}" + (f" {compute_type}" if backend == "faster-whisper" else "")
        try:
            result = measure(name, config, memos, voice_dir, hotwords, pred_out=out(name))
        except Exception as exc:  # noqa: BLE001 - e.g. torch not installed for openai-whisper
            print(f"{name}: skipped ({type(exc).__name__}: {exc})")
            continue
        default = SpeechConfig()
        if backend == default.backend and beam == default.beam_size and compute_type == default.compute_type:
            default_ok = result["cer"] <= args.max_cer
    if args.variants:
        base = SpeechConfig()
        for beam in sorted({1, base.beam_size}):
            cfg = replace(base, beam_size=beam)
            measure(f"fw beam{beam} plain (no prompt/hot/corr/t2s)", replace(cfg, initial_prompt="", correct_terms=False),
                    memos, voice_dir, [], use_t2s=False)
            measure(f"fw beam{beam} t2s only", replace(cfg, initial_prompt="", correct_terms=False), memos, voice_dir, [])
            measure(f"fw beam{beam} prompt+t2s", replace(cfg, correct_terms=False), memos, voice_dir, [])
            measure(f"fw beam{beam} prompt+t2s+hotwords", replace(cfg, correct_terms=False), memos, voice_dir, hotwords)
            measure(f"fw beam{beam} prompt+t2s+hotwords+correction", cfg, memos, voice_dir, hotwords)
    verdict = {None: "not measured", True: "OK, at most", False: "ABOVE"}[default_ok]
    print(f"default configuration CER {verdict} max {args.max_cer}")
    return 1 if default_ok is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
