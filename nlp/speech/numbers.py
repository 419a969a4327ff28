"""Numbers as spoken: whisper's digits (120万, 12月8号, 15%, 86.5) back to Chinese numerals.

Why: reps say 一百二十万 and 十二月八号, and whisper writes some of them in digits, some in
characters, sometimes both in one memo. The extractor reads either form (``nlp.numerals``), but a
transcript that mixes them is harder to read back and to compare with what was said (every digit
is a character error against the spoken words). One form, the spoken one, for everything short:

- an integer of up to 8 digits without a leading zero is read by position (12 → 十二,
  120 → 一百二十, 2005 → 两千零五, 35000 → 三万五千); a lone 2 before a measure word is 两
  (2台 → 两台) and a leading 2 before 百/千/万 is 两 (220 → 两百二十), as people say them;
- a decimal reads its fraction digit by digit (86.5 → 八十六点五); ``N%`` is 百分之N;
- longer numbers, numbers with a leading zero (phone numbers, codes), years (2026年) and digits
  after a written 点 (一点2个亿 → 一点二个亿) are read digit by digit (二零二六年).

Digits inside Latin words (PET-CT, V3, 5G) are left alone.
"""

from __future__ import annotations

import re
from typing import Final

_DIGITS: Final = "零一二三四五六七八九"
_MEASURE_FOR_LIANG: Final = "个台套万千百位家次块支条张份周天年箱盒点"
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])(\d+)(?:\.(\d+))?(%|％)?(?![A-Za-z0-9])")


def _digit_by_digit(digits: str) -> str:
    return "".join(_DIGITS[int(d)] for d in digits)


def _under_10000(n: int) -> str:
    """1..9999 by position, 零 for inner gaps; 10-19 as 十N (not 一十N)."""
    out = []
    units = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))
    gap = False
    for value, unit in units:
        digit = n // value % 10
        if digit == 0:
            gap = bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        out.append(_DIGITS[digit] + unit)
    text = "".join(out)
    if 10 <= n < 20:
        text = text[1:]  # 一十二 → 十二
    if text.startswith("二") and n >= 100 and len(text) > 1 and text[1] in "千百":
        text = "两" + text[1:]  # 两百二十, 两千
    return text


def spell_integer(n: int) -> str:
    """0..99 999 999 by position: 35000 → 三万五千, 120 → 一百二十, 100005 → 十万零五."""
    if n == 0:
        return "零"
    high, low = divmod(n, 10_000)
    if not high:
        return _under_10000(low)
    head = _under_10000(high)
    head = "两" if head == "二" else head
    if not low:
        return head + "万"
    tail = _under_10000(low)
    if tail.startswith("十"):
        tail = "一" + tail  # 十万一十五 reads as 十万零一十五 below
    return head + "万" + ("零" if low < 1000 else "") + tail


def _spell(match: re.Match[str], text: str) -> str:
    whole, fraction, percent = match.group(1), match.group(2), match.group(3)
    after = text[match.end() : match.end() + 1]
    if not percent and not fraction and after == "年" and len(whole) == 4:
        return _digit_by_digit(whole)  # a year: 二零二六年
    before = text[match.start() - 1 : match.start()]
    if len(whole) > 8 or (len(whole) > 1 and whole.startswith("0")) or before == "点":
        spoken = _digit_by_digit(whole)
    else:
        spoken = spell_integer(int(whole))
        if spoken == "二" and not fraction and not percent and after and after in _MEASURE_FOR_LIANG:
            spoken = "两"
    if fraction:
        spoken += "点" + _digit_by_digit(fraction)
    return "百分之" + spoken if percent else spoken


def spell_numbers(text: str) -> str:
    """Every number in ``text`` written as spoken Chinese numerals (see module doc)."""
    if not any(ch.isdigit() for ch in text):
        return text
    return _NUMBER.sub(lambda m: _spell(m, text), text)
