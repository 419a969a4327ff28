"""Character error rate exactly as /work/shared/tools/score_voice.py defines it.

Kept in the package (not only in the bench) so tests and benchmarks grade with one definition:
punctuation and spaces dropped, Arabic numerals read as Chinese (cn2an), lower-cased, and
traditional characters count as errors.
"""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    try:
        import cn2an  # noqa: PLC0415

        text = cn2an.transform(text, "an2cn")
    except Exception:  # noqa: BLE001 - cn2an missing or choking: numerals count as written
        pass
    return _NON_WORD.sub("", text.lower())


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return prev[-1]


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance, reference length) after normalisation: sum these over a corpus."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def cer(reference: str, hypothesis: str) -> float:
    errors, length = char_errors(reference, hypothesis)
    return errors / length if length else float(errors > 0)
