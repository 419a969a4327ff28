"""Train (and cross-validate) the statistical stage/concern classifier in ``nlp/statmodel.py``.

usage:
    PYTHONPATH=. python -m nlp.train_classifier                 # train on all dev data, write nlp/data/classifier.npz
    PYTHONPATH=. python -m nlp.train_classifier --cv            # k-fold (random) and leave-one-corpus-out ablation

Training data: the labelled dev corpora (notes-dev, corpus-a-dev, corpus-b-dev, notes-heldout; never
the blind sets) plus ``nlp/data/classifier_extra.jsonl``, sentences written for this model to cover
thin classes and English/mixed phrasing (stage/concern labels only).  Deterministic: zero init,
full-batch Adam for a fixed number of steps, fold assignment from a fixed seed.

Cross-validation scores the classifier's *effect*: the rules are fixed (they were tuned on all of
these corpora, so the rules-only column is in-sample), and for each fold the model is trained
without that fold and combined with the rules on it.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from .extract import Extractor
from .lexicon import load_lexicon
from .statmodel import DEFAULT_PATH, Policy, Prediction, StatModel, combine_concerns, combine_stage, features

ROOT = Path(__file__).resolve().parents[1]
EXTRA = Path(__file__).with_name("data") / "classifier_extra.jsonl"
CORPORA = {
    "notes-dev": [ROOT.parent / "shared/corpus/notes-dev.jsonl", ROOT / "../shared/corpus/notes-dev.jsonl",
                  Path("/work/shared/corpus/notes-dev.jsonl")],
    "notes-heldout": [ROOT / "tests/data/notes-heldout.jsonl"],
    "corpus-a-dev": [ROOT / "tests/data/corpus-a-dev.jsonl"],
    "corpus-b-dev": [ROOT / "tests/data/corpus-b-dev.jsonl"],
}
SEED = 20261130
_RULE_SIGNALS = ("ss:", "sa:", "ck:")
STEPS = 300
L2 = 3e-4
MIN_DF = 2
STAGES: list[str | None] = [None, "first_contact", "needs", "demo", "trial", "tender", "negotiation", "contract",
                            "delivery", "payment", "lost"]
CONCERNS = ["price", "budget", "competitor", "process", "product", "clinical", "delivery", "compliance",
            "service", "relationship"]


@dataclass
class Item:
    corpus: str
    stage_ok: list[str | None]
    concerns: set[str]
    feats: dict[str, float]
    rule_stage: tuple[str, float] | None
    status: list[str]
    action: list[str]
    rule_concerns: list[str]
    vetoed: list[str]
    competitor: bool


def _find(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def load_items(ex: Extractor) -> list[Item]:
    assert ex.model is None
    items = []
    sources = [(name, _find(paths)) for name, paths in CORPORA.items()] + [("extra", EXTRA)]
    for name, path in sources:
        if path is None:
            print(f"warning: corpus {name} not found, skipped", file=sys.stderr)
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            exp = row.get("expect", row)
            now = datetime.fromisoformat(row.get("now", "2026-03-18T10:00:00+08:00"))
            note = ex.extract(row["text"], now)
            sig = ex.last_signals
            status = [s[3:] for s in sig if s.startswith("ss:")]
            action = [s[3:] for s in sig if s.startswith("sa:")]
            vetoed = [s[3:] for s in sig if s.startswith("cv:")]
            rule_stage = (note.stage, note.confidence.get("stage", 0.0)) if note.stage else None
            items.append(Item(name, list(exp["stage"]), set(exp["concerns"]), features(ex.last_clean, sig),
                              rule_stage, status, action, list(note.concerns), vetoed, bool(note.competitors)))
    return items


def train(items: list[Item], steps: int = STEPS, l2: float = L2, blind_copy: bool = True) -> StatModel:
    """``blind_copy``: every message is also seen once without the rules' keyword signals.  The rules
    were tuned on these same corpora, so with their signals alone the model would learn that the rules
    are never wrong and could add nothing on new wording; the blinded copy makes the text features
    carry weight of their own."""
    if blind_copy:
        items = items + [replace(it, feats={f: v for f, v in it.feats.items() if f[:3] not in _RULE_SIGNALS})
                         for it in items]
    df: dict[str, int] = {}
    for it in items:
        for f in it.feats:
            df[f] = df.get(f, 0) + 1
    vocab = sorted(f for f, n in df.items() if n >= MIN_DF or ":" in f[:3])
    index = {f: i for i, f in enumerate(vocab)}
    x = np.zeros((len(items), len(vocab)))
    for r, it in enumerate(items):
        for f, v in it.feats.items():
            if f in index:
                x[r, index[f]] = v
    k, c = len(STAGES), len(CONCERNS)
    mask = np.zeros((len(items), k))
    for r, it in enumerate(items):
        for s in it.stage_ok:
            mask[r, STAGES.index(s)] = 1.0
    y = np.array([[1.0 if code in it.concerns else 0.0 for code in CONCERNS] for it in items])
    n = len(items)
    w = np.zeros((len(vocab), k + c))
    b = np.zeros(k + c)
    mw, vw, mb, vb = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        z = x @ w + b
        zs = z[:, :k]
        ps = np.exp(zs - zs.max(axis=1, keepdims=True))
        ps /= ps.sum(axis=1, keepdims=True)
        q = ps * mask  # partial labels: maximise the probability of the set of acceptable stages
        q /= np.maximum(q.sum(axis=1, keepdims=True), 1e-12)
        pc = 1.0 / (1.0 + np.exp(-z[:, k:]))
        g = np.hstack([ps - q, pc - y]) / n
        gw = x.T @ g + l2 * w
        gb = g.sum(axis=0)
        for p_, g_, m_, v_ in ((w, gw, mw, vw), (b, gb, mb, vb)):
            m_ *= b1
            m_ += (1 - b1) * g_
            v_ *= b2
            v_ += (1 - b2) * g_ * g_
            p_ -= lr * (m_ / (1 - b1 ** t)) / (np.sqrt(v_ / (1 - b2 ** t)) + eps)
    return StatModel(vocab, STAGES, CONCERNS, w[:, :k], b[:k], w[:, k:], b[k:])


def apply(it: Item, pred: Prediction | None, policy: Policy, dominant: frozenset[str],
          implied: frozenset[str]) -> tuple[str | None, list[str]]:
    if pred is None:
        return (it.rule_stage[0] if it.rule_stage else None), it.rule_concerns
    st = combine_stage(it.rule_stage, it.status, it.action, pred, policy, dominant)
    cons = combine_concerns(it.rule_concerns, it.vetoed, pred, policy, implied if it.competitor else ())
    return (st[0] if st else None), cons


def score(items: list[Item], outs: list[tuple[str | None, list[str]]]) -> tuple[float, float]:
    ok = sum(o[0] in it.stage_ok for it, o in zip(items, outs))
    tp = fp = fn = 0
    for it, (_, cons) in zip(items, outs):
        ps = set(cons)
        tp += len(ps & it.concerns)
        fp += len(ps - it.concerns)
        fn += len(it.concerns - ps)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return ok / len(items), (2 * p * r / (p + r) if p + r else 0.0)


POLICIES = {
    "rules only": None,
    "+stage (no rule stage)": Policy(stage_none=0.6, stage_action=2.0, stage_ties=False, concern_add=2.0),
    "+stage (none/action/ties)": Policy(stage_none=0.6, stage_action=0.75, stage_ties=True, concern_add=2.0),
    "+concerns add p>=0.8": Policy(stage_none=2.0, stage_action=2.0, stage_ties=False, concern_add=0.8),
    "+concerns add p>=0.6": Policy(stage_none=2.0, stage_action=2.0, stage_ties=False, concern_add=0.6),
    "+concerns add 0.8, drop<0.1": Policy(stage_none=2.0, stage_action=2.0, stage_ties=False, concern_add=0.8,
                                          concern_drop=0.1),
    "+stage (no rule stage) p>=0.4": Policy(stage_none=0.4, stage_action=2.0, stage_ties=False, concern_add=2.0),
    "shipped policy": Policy(),
}


def cross_validate(items: list[Item], folds: int, ex: Extractor) -> None:
    dev = [i for i, it in enumerate(items) if it.corpus != "extra"]
    extra = [i for i, it in enumerate(items) if it.corpus == "extra"]
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(dev))
    schemes = {f"{folds}-fold random": [[dev[j] for j in order[f::folds]] for f in range(folds)],
               "leave-one-corpus-out": [[i for i in dev if items[i].corpus == c] for c in CORPORA]}
    dominant = frozenset(g.code for g in ex.lexicon.stages if g.dominant)
    implied = frozenset(g.code for g in ex.lexicon.concerns if g.implied_by_competitor)
    for scheme, parts in schemes.items():
        preds: dict[int, Prediction] = {}
        for part in parts:
            held = set(part)
            model = train([items[i] for i in range(len(items)) if i not in held])
            for i in part:
                preds[i] = model.predict(items[i].feats)
        print(f"\n== {scheme} (stage accuracy / concerns F1; model never saw the scored message)")
        names = list(CORPORA)
        print(f"{'policy':30s}" + "".join(f"{n:>18s}" for n in names + ["all dev"]))
        for label, pol in POLICIES.items():
            row = []
            for n in names + ["all dev"]:
                idx = [i for i in dev if n == "all dev" or items[i].corpus == n]
                outs = [apply(items[i], preds[i] if pol else None, pol or Policy(), dominant, implied) for i in idx]
                st, cf = score([items[i] for i in idx], outs)
                row.append(f"{st:.3f} / {cf:.3f}")
            print(f"{label:30s}" + "".join(f"{r:>18s}" for r in row))
    _ = extra


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv", action="store_true", help="cross-validate instead of writing the weights")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", default=str(DEFAULT_PATH))
    a = ap.parse_args(argv)
    ex = Extractor(load_lexicon(), model=None)
    items = load_items(ex)
    print(f"{len(items)} labelled messages ({sum(it.corpus == 'extra' for it in items)} written for the model)")
    if a.cv:
        cross_validate(items, a.folds, ex)
        return 0
    model = train(items)
    model = StatModel(model._vocab_list, model.stages, model.concerns, *model._raw, policy=Policy())
    model.save(a.out)
    print(f"wrote {a.out}: {len(model.vocab)} features, {Path(a.out).stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
