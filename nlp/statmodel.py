"""A small statistical classifier beside the rules, for stage and concerns.

Why: the keyword rules are precise but only know the wording they were written for; a linear
model over character 1–3-grams, English words and the rules' own keyword signals generalises
to paraphrases ("钱还没批下来", "budget's frozen") the lexicon has not listed yet.  It is
deliberately small and transparent: L2-regularised logistic regression (softmax over stages
with "no stage" as a class, one binary model per concern), trained by ``nlp/train_classifier.py``
on the labelled dev corpora, weights in ``nlp/data/classifier.npz`` (pure numpy, no pickles).

How it is combined with the rules (conservatively, see ``combine_stage``/``combine_concerns``):
- stage: a stage the rules found in a status clause wins; when the rules found only our own
  action clauses, or nothing, the model decides if it is confident; when the rules found several
  different stages, the model picks among those candidates only;
- concerns: the model adds a concern only above a high probability and only when the rules did
  not see (and veto) a keyword of that concern as negated or praised ("价格不是问题").
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_PATH = Path(__file__).with_name("data") / "classifier.npz"

_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[a-z][a-z\-']+")
_NGRAM_MAX = 3
# what ndarray.max()/.sum() call after their Python-level argument handling (numpy/_core/_methods.py)
_MAX = np.maximum.reduce
_SUM = np.add.reduce


def features(text: str, signals: Iterable[str] = ()) -> dict[str, float]:
    """Feature name → value for one normalised message.

    Character n-grams (digits folded to "0", ASCII lower-cased) are binary and scaled by
    1/sqrt(count) so long voice memos do not get larger scores just for being long; English words
    and rule signals ("ss:tender" stage keyword in a status clause, "sa:" in an action clause,
    "ck:price" concern keyword kept, "cv:price" vetoed, "comp" a competitor named) count 1.
    """
    low = _DIGITS.sub("0", text.lower())
    grams: set[str] = set()
    n = len(low)
    for i in range(n):
        grams.add(low[i])
        if i + 1 < n:
            grams.add(low[i:i + 2])
            if i + 2 < n:
                grams.add(low[i:i + 3])
    grams.discard(" ")
    out: dict[str, float] = {}
    if grams:
        # math.sqrt, not np.sqrt: the same correctly rounded double without a numpy scalar per message
        w = 1.0 / math.sqrt(len(grams))
        out = dict.fromkeys(grams, w)
    for word in _WORD.findall(low):
        out["w:" + word] = 1.0
    for s in signals:
        out[s] = 1.0
    return out


def signal_names(stage_status: Sequence[str], stage_action: Sequence[str], concerns_kept: Sequence[str],
                 concerns_vetoed: Sequence[str], competitor: bool) -> list[str]:
    out = [f"ss:{c}" for c in dict.fromkeys(stage_status)]
    out += [f"sa:{c}" for c in dict.fromkeys(stage_action)]
    out += [f"ck:{c}" for c in dict.fromkeys(concerns_kept)]
    out += [f"cv:{c}" for c in dict.fromkeys(concerns_vetoed)]
    if competitor:
        out.append("comp")
    return out


@dataclass(frozen=True)
class Policy:
    """Thresholds for combining model and rules (chosen by cross-validation, see the trainer)."""

    stage_none: float = 0.6      # rules found no stage: the model's stage if at least this sure
    stage_action: float = 2.0    # rules found only action-clause stages: the model may override (2 = never)
    stage_ties: bool = False     # several rule stages: the model picks among them
    concern_add: float = 0.8     # the model adds a concern the rules missed
    concern_drop: float = 0.0    # the model drops a rule concern below this (0 = never)


@dataclass(frozen=True)
class Prediction:
    stage: dict[str | None, float]
    concerns: dict[str, float]


class StatModel:
    """Weights of the stage softmax and the per-concern logistic regressions."""

    def __init__(self, vocab: Sequence[str], stages: Sequence[str | None], concerns: Sequence[str],
                 w_stage: np.ndarray, b_stage: np.ndarray, w_concern: np.ndarray, b_concern: np.ndarray,
                 policy: Policy = Policy()) -> None:
        self.vocab = {f: i for i, f in enumerate(vocab)}
        self.stages = list(stages)
        self.concerns = list(concerns)
        # one matrix for both heads: a single gather per message.  The shipped weights are float32:
        # kept so (half the memory a message's ~100 scattered rows are read from, which are
        # rarely in cache inside the pipeline) and widened after the gather, exactly as before
        stacked = np.hstack([w_stage, w_concern])
        self._w = np.ascontiguousarray(stacked if stacked.dtype == np.float32 else stacked.astype(np.float64))
        self._b = np.concatenate([b_stage, b_concern]).astype(np.float64)
        self._k = len(self.stages)
        self.policy = policy
        self._vocab_list = list(vocab)
        self._raw = (w_stage, b_stage, w_concern, b_concern)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PATH, policy: Policy | None = None) -> StatModel:
        with np.load(path, allow_pickle=False) as z:
            stages = [s or None for s in z["stages"].tolist()]
            pol = policy or Policy(**{k: (bool(v) if k == "stage_ties" else float(v))
                                      for k, v in zip(z["policy_keys"].tolist(), z["policy_values"].tolist())})
            return cls(z["vocab"].tolist(), stages, z["concerns"].tolist(), z["w_stage"], z["b_stage"],
                       z["w_concern"], z["b_concern"], pol)

    def save(self, path: str | Path) -> None:
        w_stage, b_stage, w_concern, b_concern = self._raw
        keys = list(Policy.__dataclass_fields__)
        np.savez_compressed(
            path, vocab=np.array(self._vocab_list), stages=np.array([s or "" for s in self.stages]),
            concerns=np.array(self.concerns), w_stage=w_stage.astype(np.float32), b_stage=b_stage.astype(np.float32),
            w_concern=w_concern.astype(np.float32), b_concern=b_concern.astype(np.float32),
            policy_keys=np.array(keys), policy_values=np.array([float(getattr(self.policy, k)) for k in keys]))

    def predict(self, feats: dict[str, float]) -> Prediction:
        """The same arithmetic as ever, in the same order (the combiners compare these
        probabilities with thresholds, so even the last bit matters); only the per-call overhead
        of numpy's Python-level wrappers (``.max()``, ``.sum()``, a list index) is avoided."""
        get = self.vocab.get
        hits = [(i, v) for f, v in feats.items() if (i := get(f)) is not None]
        if hits:
            idx, val = zip(*hits)
            z = self._b + np.array(val) @ self._w.take(idx, axis=0).astype(np.float64, copy=False)
        else:
            z = self._b + 0.0
        zs = z[:self._k]
        ps = np.exp(zs - _MAX(zs))
        ps /= _SUM(ps)
        pc = 1.0 / (1.0 + np.exp(-z[self._k:]))
        return Prediction(dict(zip(self.stages, ps.tolist())), dict(zip(self.concerns, pc.tolist())))


def combine_stage(rule: tuple[str, float] | None, status: Sequence[str], action: Sequence[str],
                  pred: Prediction, policy: Policy, dominant: frozenset[str]) -> tuple[str, float] | None:
    """(code, confidence) or None.  ``rule`` is the rules' answer, ``status``/``action`` their hits."""
    if status:
        distinct = list(dict.fromkeys(status))
        if policy.stage_ties and len(distinct) > 1 and rule is not None and rule[0] not in dominant:
            best = max(distinct, key=lambda c: pred.stage.get(c, 0.0))
            return best, rule[1]
        return rule
    top = max(pred.stage, key=pred.stage.__getitem__)
    p = pred.stage[top]
    if action:
        if top != (rule[0] if rule else None) and p >= policy.stage_action:
            return (top, round(p, 2)) if top else None
        return rule
    if top is not None and p >= policy.stage_none:
        return top, round(min(p, 0.8), 2)
    return rule


def combine_concerns(rule: Sequence[str], vetoed: Sequence[str], pred: Prediction, policy: Policy,
                     keep: Iterable[str] = ()) -> list[str]:
    """Rule concerns (minus any the model is sure are wrong, when enabled) plus confident additions.
    ``keep``: codes the model may not drop (a named competitor is always a competitor concern)."""
    keep = set(keep)
    out = [c for c in rule if c in keep or pred.concerns.get(c, 1.0) >= policy.concern_drop]
    blocked = set(rule) | set(vetoed)
    extra = sorted((c for c, p in pred.concerns.items() if c not in blocked and p >= policy.concern_add),
                   key=lambda c: -pred.concerns[c])
    return out + extra
