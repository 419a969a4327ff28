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
    rf"(?<![\d.A-Za-z])(?P<num>\d+(?:\.\d+)?|{_CN_NUM})\s*(?P<more>多|余)?"
    r"(?P<unit>个亿|亿元|亿|万元|万块|万|[wW](?![A-Za-z])|千元|千块|千|元|块钱|块)"
    r"(?![台套支个件盒人例次根条片只张家床份箱包瓶袋盏位名辆])")
_SCALE = {"个亿": 10**8, "亿元": 10**8, "亿": 10**8, "万元": 10**4, "万块": 10**4, "万": 10**4, "w": 10**4,
          "W": 10**4, "千元": 1000, "千块": 1000, "千": 1000, "元": 1, "块钱": 1, "块": 1}


def find_amount(text: str) -> tuple[int, tuple[int, int]] | None:
    """The first money amount in yuan and its span, or None."""
    for m in _AMOUNT.finditer(text):
        raw, unit = m.group("num"), m.group("unit")
        if m.start() >= 3 and text[m.start() - 3:m.start()] == "百分之":
            continue
        value = to_number(raw)
        if value is None or value <= 0:
            continue
        if unit == "块" and not raw[0].isdigit() and value < 10:
            continue  # "一块去" is "together", not one yuan
        if unit in {"元", "块", "块钱"} and value < 1:
            continue
        return int(round(value * _SCALE[unit])), m.span()
    return None
