"""Money amounts in yuan: "80万" → 800000, "一百二十万", "1.5万", "2个亿", "50w", "八十万块".

Percentages ("15%", "百分之十五"), discounts ("七折", "降5个点") and quantities ("3台",
"20套", "5万台") are not money; a number counts only with a money unit, and a unit followed
by a measure word is a quantity.
"""
from __future__ import annotations

import re

from .numerals import to_number

_CN_NUM = r"[零〇一二两三四五六七八九十][零〇一二两三四五六七八九十百千万点]*"
_AMOUNT = re.compile(
    rf"(?<![\d.A-Za-z零〇一二两三四五六七八九十百千万])(?P<num>\d+(?:\.\d+)?|{_CN_NUM})\s*(?P<more>多|余|来)?"
    r"(?P<unit>个亿|亿元|亿|万元|万块|万|[wW](?![A-Za-z])|千元|千块|千|元|块钱|块|(?<=\d)[kK](?![A-Za-z])"
    r"|(?<=\d)M(?![A-Za-z])|(?<=\d)\s?million(?![A-Za-z]))"
    r"(?P<tail>(?<=万)[一二三四五六七八九](?![零〇一二两三四五六七八九十百千万亿点\d]))?"
    r"(?![台套支个件盒人例次根条片只张家床份箱包瓶袋盏位名辆])")
# a currency sign makes a bare number money ("¥368,000", "RMB 1.35M")
_CURRENCY = re.compile(r"(?:¥|￥|RMB\s?|CNY\s?)(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
                       r"\s?(?P<unit>万|[wW]|[kK]|M|million)?(?![A-Za-z\d])")
_SCALE = {"个亿": 10**8, "亿元": 10**8, "亿": 10**8, "万元": 10**4, "万块": 10**4, "万": 10**4, "w": 10**4,
          "W": 10**4, "k": 1000, "K": 1000, "M": 10**6, "million": 10**6, "千元": 1000, "千块": 1000, "千": 1000, "元": 1, "块钱": 1, "块": 1}


def find_amount(text: str) -> tuple[int, tuple[int, int]] | None:
    """The first money amount in yuan and its span, or None."""
    found = _find_unit_amount(text)
    if "¥" in text or "￥" in text or "RMB" in text or "CNY" in text:
        for m in _CURRENCY.finditer(text):
            if found is not None and found[1][0] <= m.start():
                break
            value = float(m.group("num").replace(",", ""))
            unit = m.group("unit")
            if value > 0:
                return int(round(value * (_SCALE[unit.strip()] if unit else 1))), m.span()
    return found


def _find_unit_amount(text: str) -> tuple[int, tuple[int, int]] | None:
    for m in _AMOUNT.finditer(text):
        raw, unit = m.group("num"), m.group("unit").strip()
        if m.start() >= 3 and text[m.start() - 3:m.start()] == "百分之":
            continue
        value = to_number(raw)
        if value is None or value <= 0:
            continue
        if unit == "块" and not raw[0].isdigit() and value < 10:
            continue  # "一块去" is "together", not one yuan
        if unit in {"元", "块", "块钱"} and value < 1:
            continue
        if m.group("tail"):
            value += (to_number(m.group("tail")) or 0) / 10  # "十二万八" = 12.8万
        return int(round(value * _SCALE[unit])), m.span()
    return None
