"""Chinese and Arabic numerals → numbers.

Standard numerals ("一百二十", "两万三", "八十六点五") are converted by a small pure-Python
reader; anything else ("二零二六", odd mixes) goes to cn2an.  Why not cn2an for everything:
its import plus first call cost ~0.9 s (it compiles large regexes) and each call ~70 µs,
which would dominate both start-up and per-message time.  cn2an is imported only when the
fast reader gives up.  Results are memoised (a pure-function cache, not semantic state).
"""
from __future__ import annotations

from functools import lru_cache

CN_DIGITS = "零〇一二两三四五六七八九十百千万亿点"
_SIMPLE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
           "九": 9, "十": 10}
# full-width digits and letters → ASCII (same length, so text spans stay valid)
FULLWIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF5B) if chr(c - 0xFEE0).isalnum()})


def to_number(text: str) -> float | None:
    """'86.5' → 86.5, '一百二十' → 120, '一点五' → 1.5, '两' → 2; None if not a numeral."""
    text = text.strip().translate(FULLWIDTH)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    return _cn(text)


def to_int(text: str) -> int | None:
    """Integer value of a numeral, or None (also for fractions like '一点五')."""
    value = to_number(text)
    if value is None or value != int(value):
        return None
    return int(value)


_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10**4, "亿": 10**8}


def _read_int(text: str) -> int | None:
    """Standard Chinese integer, including the spoken "两万三" (= 23000); None when unsure."""
    total, section, number = 0, 0, None
    last_unit = 0          # value of the unit just read (for "两万三", "一百二")
    zero_seen = False
    for ch in text:
        if ch in _UNITS:
            unit = _UNITS[ch]
            section += (1 if number is None else number) * unit
            number, last_unit, zero_seen = None, unit, False
        elif ch in _BIG:
            big = _BIG[ch]
            total = (total + section + (number or 0)) * big if big > 10**4 else total + (section + (number or 0)) * big
            section, number, last_unit, zero_seen = 0, None, big, False
        elif ch in ("零", "〇"):
            if number is not None:
                return None  # "一零" is a digit sequence, not a standard numeral
            zero_seen = True
        elif ch in _SIMPLE:
            if number is not None:
                return None
            number = _SIMPLE[ch]
        else:
            return None
    if number is not None:
        if last_unit and not zero_seen and text[-2:-1] not in ("零", "〇"):
            number *= last_unit // 10   # "一百二" = 120, "两万三" = 23000
        section += number
    return total + section


@lru_cache(maxsize=4096)
def _cn(text: str) -> float | None:
    if text in _SIMPLE:
        return float(_SIMPLE[text])
    if any(ch not in CN_DIGITS for ch in text):
        return None
    head, _, tail = text.partition("点")
    if tail and all(ch in _SIMPLE and _SIMPLE[ch] < 10 for ch in tail):
        whole = _read_int(head) if head else 0
        if whole is not None:
            return whole + float("0." + "".join(str(_SIMPLE[ch]) for ch in tail))
    elif not tail and "点" not in text:
        value = _read_int(text)
        if value is not None:
            return float(value)
    import cn2an  # lazy: keeps start-up fast when no Chinese numeral is ever seen

    try:
        value = cn2an.cn2an(text, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return float(value)
