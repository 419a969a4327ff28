"""Relative-date parser for rep messages ("周三前", "下下周一", "月底", "三天内", "明早10点").

Why our own: the expressions are few but their business meaning is specific (weeks start on
Monday, a bare weekday is its next occurrence strictly after today, "下周三" is Wednesday of
the next calendar week, "前/之前/内" mark deadlines, a date already behind us is flagged so the
bot can ask instead of silently scheduling into the past).  Generic parsers get these wrong.

Vague expressions ("下周", "下个月", "过几天") deliberately yield no date: the bot asks.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Iterable, Sequence

from .lexicon import Holiday
from .numerals import FULLWIDTH, to_int

NUM = r"(?:\d{1,4}|[零〇一二两三四五六七八九十]{1,4})"
_NUMCH = "0123456789零〇一二两三四五六七八九十"
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
            "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_REL_DAYS = {"大大后天": (4, None), "大后天": (3, None), "后天": (2, None), "明天": (1, None), "明日": (1, None),
             "明儿": (1, None), "明早": (1, "早"), "明晚": (1, "晚"), "今天": (0, None), "今日": (0, None),
             "今儿": (0, None), "今早": (0, "早"), "今晚": (0, "晚"), "今夜": (0, "晚"), "昨天": (-1, None),
             "前天": (-2, None)}
_PERIOD_HOUR = {"凌晨": 6, "早上": 9, "早晨": 9, "早": 9, "上午": 9, "中午": 12, "下午": 14, "傍晚": 18,
                "晚上": 20, "晚": 20}
_PM = {"下午", "傍晚", "晚上", "晚"}

_ALT_REL_DAYS = "|".join(sorted(_REL_DAYS, key=len, reverse=True))
_MONTH_REL = r"下下个?|下个?|本|这个?|次|上个?"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(rx)) for name, rx in (
    ("iso", rf"(?P<y>20\d\d)[-/.年](?P<m>\d{{1,2}})[-/.月](?P<d>\d{{1,2}})[日号]?"),
    ("md", rf"(?:(?P<mrel>{_MONTH_REL})月|(?P<m>{NUM})月份?)(?P<d>{NUM})(?:号|日)(?![楼床线机房厅院台位子])"),
    ("day", rf"(?<![{_NUMCH}月周期第.])(?P<d>{NUM})(?:号|日)(?![楼床线机房厅院台位子内])"),
    ("relday", rf"(?P<rd>{_ALT_REL_DAYS})"),
    ("weekwithin", r"(?P<wk>本|这个?|下个?)(?:周|星期|礼拜)(?P<wkdir>之内|以内|内|前|之前)"),
    ("weekday", r"(?P<wrel>下下个?|下个?|上上个?|上个?|本|这个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末1-7])"),
    ("monthpart", rf"(?:(?P<prel>{_MONTH_REL})月|(?P<pm>{NUM})月份?|(?<![个{_NUMCH}])月)"
                  r"(?P<part>底|末|初|中旬|上旬|下旬|中(?!心|层|间))"),
    # a ten-day part of the month on its own ("下旬我去回访"): of this month
    ("xun", r"(?<![月\d零〇一二两三四五六七八九十])(?P<part>上旬|中旬|下旬)"),
    ("yearend", r"(?:今年)?年(?:底|末)"),
    ("duration", rf"(?P<n>{NUM}|半)(?P<ge>个)?(?P<u>工作日|天|日|周|星期|礼拜|月|年)"
                 r"(?P<dir>之内|以内|内|之后|以后|后|前|左右)"),
    ("guo", rf"过(?P<gn>{NUM})天"),
    ("tiqian", rf"提前(?P<tn>{NUM})(?:个)?(?P<tu>天|日|周|星期)"),
    # a day fixed by an event dated just before ("下周四开标，开标前一天我过去", "会议当天", "装机第二天")
    ("eventrel", r"(?<=[\u4e00-\u9fff])(?<![\d零〇一二两三四五六七八九十几最])"
                 r"(?P<ev>前一天|前一晚|头一天|头天|当天|第二天|后一天|次日)"),
    # numeric month/day as typed in chats: "12/20", "10/20", "12.18下午", "10.8前" (a "." date must be
    # followed by a date-like word so "1.35M" or "42.8w" stay amounts)
    ("slash", r"(?<![\d/.\-])(?P<sm>1[0-2]|0?[1-9])/(?P<sd>[12]\d|3[01]|0?[1-9])(?![\d/%])"),
    ("dotmd", r"(?<![\d/.\-])(?P<sm>1[0-2]|0?[1-9])\.(?P<sd>[12]\d|3[01]|0?[1-9])"
              r"(?=号|日|前|之前|以前|截止|[上下中]午|早上|晚上|当天|那天|$|[\s，,。!！;；)）])"),
    # English day words in mixed messages: "by Friday", "next Monday", "EOD", "tomorrow"
    ("enday", r"(?i)(?<![A-Za-z])(?:(?P<enrel>next|this|coming)\s+)?(?P<enwd>mon(?:day)?|tue(?:s|sday)?|"
              r"wed(?:nesday)?|thu(?:r|rs|rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)(?![A-Za-z])"),
    # English month names: "Oct 12", "December 3rd", "12 Oct"
    ("enmd", r"(?i)(?<![A-Za-z])(?:(?P<emon>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s*"
             r"(?P<eday>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?![\d:])|(?<!\d)(?P<eday2>[12]\d|3[01]|0?[1-9])"
             r"(?:st|nd|rd|th)?\s+(?P<emon2>jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*)(?![A-Za-z])"),
    # "马上去催", "立即处理", "下班前发过去": right away / before close of business is a deadline today
    ("rightaway", r"(?P<ra>马上|立刻|立即|立马|下班前|下班之前)"),
    ("enrel", r"(?i)(?<![A-Za-z])(?P<enr>today|tonight|tomorrow|tmr|tmrw|eod|cob|end of (?:the )?day|"
              r"day after tomorrow|end of (?:the )?month|eom|end of (?:the |this )?week|eow|end of next week)"
              r"(?![A-Za-z])"),
))
# characters without which a pattern cannot match (cheap pre-check before running the regex)
_TRIGGERS = {name: frozenset(chars) for name, chars in (
    ("iso", "年-/."), ("rightaway", "马立下"), ("md", "月"), ("day", "号日"), ("relday", "天日儿早晚夜"), ("weekwithin", "周期拜"),
    ("weekday", "周期拜"), ("monthpart", "月"), ("yearend", "年"), ("duration", "内后前右"), ("guo", "过"),
    ("tiqian", "提"), ("eventrel", "前头当第后次"), ("xun", "旬"), ("slash", "/"), ("dotmd", "."), ("enday", "MTWFSmtwfs"), ("enmd", "JFMASONDjfmasond"), ("enrel", "TtEeCc"))}
_FULLWIDTH_RX = re.compile("[\uff10-\uff5a]")
_TIME = re.compile(rf"(?P<period>凌晨|早上|早晨|上午|中午|下午|傍晚|晚上|早|晚)?(?P<h>{NUM})(?:点|时|:|：)"
                   rf"(?:(?P<half>半)|(?P<q>一刻)|(?P<mi>{NUM})(?:分)?)?")
_EN_TIME = re.compile(r"(?i)(?<![A-Za-z\d:])(?P<h>1[0-2]|0?[1-9])(?::(?P<mi>[0-5]\d))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)"
                      r"(?![A-Za-z])")
_EN_TIME_BEFORE = re.compile(_EN_TIME.pattern + r"\s*$")
_PERIOD_ONLY = re.compile(r"凌晨|早上|早晨|上午|中午|下午|傍晚|晚上")
_DEADLINE = re.compile(r"\s*(?:之前|以前|前(?![台列期面端后一头两])|之内|以内|为止|截止|截至|内(?![科镜容部外网]))")
_STANDALONE_TIME_OK = re.compile(r"\s*(?:之前|以前|前|钟|整|左右|准时)")


@dataclass(frozen=True)
class DueDate:
    """A resolved date expression. ``span`` is the [start, end) of the expression in the text."""

    due: date
    due_at: datetime | None
    deadline: bool
    past: bool
    span: tuple[int, int]


def parse_due(text: str, now: datetime, holidays: Sequence[Holiday] = ()) -> DueDate | None:
    """The earliest (in time) date expression in ``text``; ties go to the first in the text."""
    found = find_dates(text, now, holidays)
    if not found:
        return None
    return min(found, key=lambda d: (d.due, d.span[0]))


_ANSWER_PREFIX = re.compile(r"^(?:[，,。\s]|不对|不是|应该是|是|改到|改成|改为|推迟到|推到|延期到|延后到|延到|提前到|"
                            r"挪到|换到|放到|定在|定到|那就|就|嗯|哦)+")
_SHIFT = re.compile(rf"(?P<verb>推迟|延后|延期|往后推|往后挪|顺延|推后|提前|往前挪|往前推)(?P<n>{NUM}|半)(?:个)?"
                    r"(?P<u>天|日|周|星期|礼拜)")


def parse_date_answer(text: str, now: datetime, base: date | None = None,
                      holidays: Sequence[Holiday] = ()) -> DueDate | None:
    """Parse a standalone answer to "什么时候？": "周四", "不对，是下周四", "推迟到周五", "推迟两天".

    Shifts ("推迟两天", "提前一天") need ``base`` (the date being corrected).
    """
    clean = text.translate(FULLWIDTH)
    shift = _SHIFT.search(clean)
    if shift and base is not None:
        n = 0.5 if shift.group("n") == "半" else to_int(shift.group("n"))
        if n is not None:
            days = int(n * (7 if shift.group("u") in {"周", "星期", "礼拜"} else 1))
            sign = -1 if shift.group("verb").startswith(("提前", "往前")) else 1
            due = base + timedelta(days=sign * days)
            return DueDate(due, None, False, due < _today(now), shift.span())
    stripped = _ANSWER_PREFIX.sub("", clean)
    offset = len(clean) - len(stripped)
    found = parse_due(stripped, now, holidays)
    if found is None:
        return None
    return replace(found, span=(found.span[0] + offset, found.span[1] + offset))


def _today(now: datetime) -> date:
    return now.date()


def find_dates(text: str, now: datetime, holidays: Sequence[Holiday] = ()) -> list[DueDate]:
    """All resolvable date expressions in ``text``, in text order."""
    if _FULLWIDTH_RX.search(text):
        text = text.translate(FULLWIDTH)
    today = _today(now)
    chars = set(text)
    candidates: list[tuple[int, int, str, re.Match[str]]] = []
    for name, rx in _PATTERNS:
        if chars.isdisjoint(_TRIGGERS[name]):
            continue
        for m in rx.finditer(text):
            candidates.append((m.start(), m.end(), name, m))
    holiday_rx = _holiday_regex(tuple(holidays)) if holidays else None
    for m in holiday_rx.finditer(text) if holiday_rx is not None and not chars.isdisjoint(
            _holiday_chars(tuple(holidays))) else ():
        candidates.append((m.start(), m.end(), "holiday", m))
    candidates.sort(key=lambda c: (c[0], -(c[1] - c[0])))

    mentions: list[tuple[int, int, date | None, bool, bool, str | None, re.Match[str], str]] = []
    last_end = -1
    for start, end, name, m in candidates:
        if start < last_end:
            continue
        resolved = _resolve(name, m, today, holidays)
        if resolved is None and name not in _RELATIVE:
            continue
        due, deadline, past, period = resolved if resolved else (None, False, False, None)
        mentions.append((start, end, due, deadline, past, period, m, name))
        last_end = end

    out: list[DueDate] = []
    previous: date | None = None
    occupied = [(s, e) for s, e, *_ in mentions]
    for start, end, due, deadline, past, period, m, name in mentions:
        if name == "tiqian":
            n = to_int(m.group("tn"))
            if previous is None or n is None:
                continue
            due = previous - timedelta(days=n * (7 if m.group("tu") in {"周", "星期"} else 1))
            past = due < today
        elif name == "eventrel":
            if previous is None:
                continue  # "第二天下午才到" with no date before it: nothing to count from
            due = previous + timedelta(days=_EVENT_OFFSET[m.group("ev")])
            past = due < today
        assert due is not None
        at, end = _attach_time(text, end, due, period, now, occupied)
        pre = _EN_TIME_BEFORE.search(text, max(0, start - 12), start) if at is None and _HAS_AMPM.search(text) else None
        if pre is not None:  # "3pm today", "9am tomorrow"
            at, start = datetime.combine(due, time(*_en_clock(pre)), tzinfo=now.tzinfo), pre.start()
        dl = _DEADLINE.match(text, end)
        if dl and name not in {"duration"}:
            deadline, end = True, dl.end()
        out.append(DueDate(due, at, deadline, past, (start, end)))
        previous = due
    out.extend(_standalone_times(text, now, [d.span for d in out]))
    if _HAS_AMPM.search(text):
        out.extend(_standalone_en_times(text, now, [d.span for d in out]))
    out.extend(_standalone_periods(text, now, [d.span for d in out]))
    out.sort(key=lambda d: d.span[0])
    return out


def _standalone_periods(text: str, now: datetime, occupied: list[tuple[int, int]]) -> Iterable[DueDate]:
    """A bare day period ("下午去财务处对账") means today."""
    if chars_absent(text, "午上晚傍凌早"):
        return
    for m in _PERIOD_ONLY.finditer(text):
        if any(s <= m.start() < e or s < m.end() <= e for s, e in occupied):
            continue
        at = datetime.combine(now.date(), time(_PERIOD_HOUR[m.group()], 0), tzinfo=now.tzinfo)
        end = m.end()
        dl = _DEADLINE.match(text, end)
        yield DueDate(at.date(), at, bool(dl), False, (m.start(), dl.end() if dl else end))


def chars_absent(text: str, chars: str) -> bool:
    return not any(ch in text for ch in chars)


def _attach_time(text: str, end: int, due: date, period: str | None, now: datetime,
                 occupied: list[tuple[int, int]]) -> tuple[datetime | None, int]:
    """A clock time or day period right after a date ("明早10点", "后天下午三点", "下周一上午")."""
    pos = end
    while pos < len(text) and text[pos] in " 的":
        pos += 1
    m = _TIME.match(text, pos)
    if m and not any(s < m.end() and m.start() < e for s, e in occupied if s >= pos):
        hm = _clock(m, period)
        if hm is not None:
            return datetime.combine(due, time(*hm), tzinfo=now.tzinfo), m.end()
    en = _EN_TIME.match(text, pos)
    if en:
        return datetime.combine(due, time(*_en_clock(en)), tzinfo=now.tzinfo), en.end()
    p = _PERIOD_ONLY.match(text, pos)
    if p:
        return datetime.combine(due, time(_PERIOD_HOUR[p.group()], 0), tzinfo=now.tzinfo), p.end()
    if period is not None:
        return datetime.combine(due, time(_PERIOD_HOUR[period], 0), tzinfo=now.tzinfo), end
    return None, end


def _clock(m: re.Match[str], day_period: str | None) -> tuple[int, int] | None:
    hour = to_int(m.group("h"))
    if hour is None or hour > 24:
        return None
    minute = 30 if m.group("half") else 15 if m.group("q") else (to_int(m.group("mi")) if m.group("mi") else 0)
    if minute is None or minute > 59:
        return None
    period = m.group("period") or day_period
    if period in _PM and hour < 12:
        hour += 12
    elif period == "中午" and hour < 6:
        hour += 12
    elif period is None and 1 <= hour <= 6:
        hour += 12  # "3点" in a work message means the afternoon
    return hour % 24, minute


def _en_clock(m: re.Match[str]) -> tuple[int, int]:
    hour, minute = int(m.group("h")) % 12, int(m.group("mi") or 0)
    return (hour + 12 if m.group("ap").lower().startswith("p") else hour), minute


def _standalone_en_times(text: str, now: datetime, occupied: list[tuple[int, int]]) -> Iterable[DueDate]:
    """An English clock time ("Call Dr. Xu 3pm", "by 5pm"): today if still ahead, else tomorrow; one
    written just before a day word ("3pm today", "9am tomorrow") belongs to that day."""
    for m in _EN_TIME.finditer(text):
        nxt = min((s for s, e in occupied if s >= m.end()), default=None)
        if any(s <= m.start() < e for s, e in occupied):
            continue
        if nxt is not None and not text[m.end():nxt].strip():
            continue  # the day after it carries the date; the time alone would be a second one
        at = datetime.combine(now.date(), time(*_en_clock(m)), tzinfo=now.tzinfo)
        if at <= now:
            at += timedelta(days=1)
        yield DueDate(at.date(), at, text[max(0, m.start() - 3):m.start()].lower().strip() == "by", False, m.span())


def _standalone_times(text: str, now: datetime, occupied: list[tuple[int, int]]) -> Iterable[DueDate]:
    """A clock time with no date ("下午3点前"): today if still ahead, else tomorrow."""
    if chars_absent(text, "点时:："):
        return
    for m in _TIME.finditer(text):
        if any(s <= m.start() < e + 3 for s, e in occupied):
            continue
        if not m.group("period") and not _STANDALONE_TIME_OK.match(text, m.end()):
            continue  # "有两点要求" is not a time
        hm = _clock(m, None)
        if hm is None:
            continue
        at = datetime.combine(now.date(), time(*hm), tzinfo=now.tzinfo)
        if at <= now:
            at += timedelta(days=1)
        end = m.end()
        dl = _DEADLINE.match(text, end)
        deadline = bool(dl)
        if dl:
            end = dl.end()
        yield DueDate(at.date(), at, deadline, False, (m.start(), end))


@lru_cache(maxsize=8)
def _holiday_chars(holidays: tuple[Holiday, ...]) -> frozenset[str]:
    return frozenset("节年").union(*(n[0] for h in holidays for n in h.names))


@lru_cache(maxsize=8)
def _holiday_regex(holidays: tuple[Holiday, ...]) -> re.Pattern[str]:
    names = sorted({n for h in holidays for n in h.names}, key=len, reverse=True)
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![{_NUMCH}])(?:(?P<hol>{alt})|(?P<jie>节)|(?P<nian>年))"
                      rf"(?P<hdir>之前|以前|前|之后|以后|后|期间)?(?![月号日点个天周年\d])")


def _resolve(name: str, m: re.Match[str], today: date, holidays: Sequence[Holiday]
             ) -> tuple[date, bool, bool, str | None] | None:
    """(due, deadline, past, implied day period) for one match, or None when not resolvable."""
    try:
        return _RESOLVERS[name](m, today, holidays)
    except (ValueError, OverflowError):
        return None  # "2月30号" and friends


def _r_iso(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None]:
    due = date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    return due, False, due < today, None


def _month_shift(today: date, rel: str | None) -> tuple[int, int]:
    """(year, month) for 本月 / 下个月 / 下下个月 / 上个月."""
    step = 0
    if rel:
        step = 2 if rel.startswith("下下") else 1 if rel.startswith(("下", "次")) else -1 if rel.startswith("上") else 0
    month0 = today.month - 1 + step
    return today.year + month0 // 12, month0 % 12 + 1


def _infer_year(today: date, month: int, day: int) -> tuple[date, bool]:
    """A month/day with no year: this year, or next year when it lies far behind us."""
    due = date(today.year, month, day)
    if due < today and (today - due).days > 90:
        return date(today.year + 1, month, day), False
    return due, due < today


def _r_md(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    day = to_int(m.group("d"))
    if day is None:
        return None
    if m.group("mrel") is not None:
        year, month = _month_shift(today, m.group("mrel"))
        due = date(year, month, day)
        return due, False, due < today, None
    month = to_int(m.group("m"))
    if month is None or not 1 <= month <= 12:
        return None
    due, past = _infer_year(today, month, day)
    return due, False, past, None


def _r_day(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    day = to_int(m.group("d"))
    if day is None or not 1 <= day <= 31:
        return None
    if day >= today.day:
        return date(today.year, today.month, day), False, False, None
    year, month = _month_shift(today, "下")
    return date(year, month, day), False, False, None


def _r_relday(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, str | None]:
    offset, period = _REL_DAYS[m.group("rd")]
    return today + timedelta(days=offset), False, offset < 0, period


def _r_weekwithin(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None]:
    monday = today - timedelta(days=today.weekday())
    friday = monday + timedelta(days=4 if today.weekday() <= 4 else 6)
    if m.group("wk").startswith("下") and m.group("wkdir") in {"内", "之内", "以内"}:
        friday = monday + timedelta(days=11)
    return friday, True, False, None


def _r_weekday(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    rel, wd_ch = m.group("wrel"), m.group("wd")
    if rel is None and m.start() > 0 and m.string[m.start() - 1] in _NUMCH:
        return None  # "一周一次"
    if rel is None:
        # "下周一或者周二", "下周三到周五": the second weekday shares the first one's week
        prev = _WEEKDAY_LIST.search(m.string, max(0, m.start() - 12), m.start())
        if prev is not None:
            rel = prev.group("wrel")
    weekday = 5 if wd_ch == "末" else _WEEKDAY[wd_ch]
    monday = today - timedelta(days=today.weekday())
    if rel is None:
        if wd_ch == "末":
            return (today if today.weekday() >= 5 else monday + timedelta(days=5)), False, False, None
        delta = (weekday - today.weekday()) % 7 or 7
        return today + timedelta(days=delta), False, False, None
    weeks = {"下下": 2, "下": 1, "上上": -2, "上": -1}.get(rel.rstrip("个"), 0)
    due = monday + timedelta(days=7 * weeks + weekday)
    return due, False, due < today, None


_WEEKDAY_LIST = re.compile(r"(?P<wrel>下下个?|下个?|上上个?|上个?|本|这个?)(?:周|星期|礼拜)[一二三四五六日天1-7]"
                           r"(?:[上下]午|早上|晚上)?(?:或者|或是|或|还是|和|跟|与|、|到|至|-|~|～)$")


def _r_monthpart(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    part = m.group("part")
    if m.group("pm") is not None:
        month = to_int(m.group("pm"))
        if month is None or not 1 <= month <= 12:
            return None
        year = today.year
        if month < today.month and today.month - month > 3:
            year += 1
    elif m.group("prel") is not None:
        year, month = _month_shift(today, m.group("prel"))
    else:
        year, month = today.year, today.month
        threshold = {"初": 5, "上旬": 10, "中": 15, "中旬": 20}.get(part)
        if threshold is not None and today.day > threshold:
            year, month = _month_shift(today, "下")
    last = calendar.monthrange(year, month)[1]
    day = {"初": 5, "上旬": 10, "中": 15, "中旬": 20}.get(part, last)
    due = date(year, month, day)
    return due, part != "中", due < today, None


def _r_xun(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None]:
    """"下旬" alone: the end of this month (like 月底); 上旬/中旬 of next month once they are behind us."""
    part = m.group("part")
    year, month = today.year, today.month
    day = {"上旬": 10, "中旬": 20}.get(part)
    if day is not None and today.day > day:
        year, month = _month_shift(today, "下")
    if day is None:
        day = calendar.monthrange(year, month)[1]
    due = date(year, month, day)
    return due, True, False, None


def _r_yearend(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None]:
    return date(today.year, 12, 31), True, False, None


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _r_duration(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    raw, unit, direction = m.group("n"), m.group("u"), m.group("dir")
    n: float | None = 0.5 if raw == "半" else to_int(raw)
    if n is None or n <= 0:
        return None
    if unit == "月":
        delta_days = None
    elif unit == "年":
        delta_days = int(365 * n)
    elif unit in {"周", "星期", "礼拜"}:
        delta_days = int(7 * n)
    elif unit == "工作日":
        delta_days = _business_days(today, int(n))
    else:
        delta_days = int(n)
    sign = -1 if direction == "前" else 1
    if delta_days is None:
        due = today + timedelta(days=15 * sign) if n == 0.5 else _add_months(today, sign * int(n))
    else:
        due = today + timedelta(days=sign * delta_days)
    return due, direction in {"内", "之内", "以内"}, sign < 0, None


def _business_days(today: date, n: int) -> int:
    day, added = today, 0
    while added < n:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return (day - today).days


def _r_guo(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    n = to_int(m.group("gn"))
    return (today + timedelta(days=n), False, False, None) if n else None


def _r_holiday(m: re.Match[str], today: date, holidays: Sequence[Holiday]
               ) -> tuple[date, bool, bool, None] | None:
    direction = m.group("hdir")
    if m.group("hol"):
        pool = [h for h in holidays if m.group("hol") in h.names]
    elif m.group("jie"):
        if not direction or direction == "期间":
            return None  # a bare "节" is not a date
        pool = list(holidays)
    else:
        if direction not in {"前", "之前", "以前", "后", "之后", "以后"}:
            return None  # "年" alone
        pool = [h for h in holidays if h.lunar_new_year]
    periods = sorted(p for h in pool for p in h.periods if p[1] >= today)
    if not periods:
        return None
    first, last = periods[0]
    if direction in {"前", "之前", "以前"}:
        return first - timedelta(days=1), True, False, None
    if direction in {"后", "之后", "以后"}:
        return last + timedelta(days=1), False, False, None
    return max(first, today), False, False, None


def _r_slash(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    due, past = _infer_year(today, int(m.group("sm")), int(m.group("sd")))
    return due, False, past, None


_HAS_AMPM = re.compile(r"(?i)\d\s*[ap]\.?m")
_EN_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                          "dec"), start=1)}


def _r_enmd(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    mon = (m.group("emon") or m.group("emon2")).lower()[:3]
    if mon == "may" and m.group("emon") and m.string[m.start():m.start() + 3] == "may":
        return None  # "may 3" is too often the verb
    due, past = _infer_year(today, _EN_MONTHS[mon], int(m.group("eday") or m.group("eday2")))
    deadline = m.string[max(0, m.start() - 7):m.start()].lower().strip() in {"by", "before", "until"}
    return due, deadline, past, None


_EN_BEFORE_DAY = re.compile(r"(?i)(?:by|on|until|till|before|due|from)\s+$")
_EN_WEEKDAY = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def _r_enday(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, None] | None:
    word = m.group("enwd").lower()
    if len(word) <= 4 and m.group("enrel") is None and not _EN_BEFORE_DAY.search(
            m.string, max(0, m.start() - 8), m.start()):
        return None  # an abbreviation needs a preposition: "by Fri"; "Sun Yat-sen" is a name
    weekday = _EN_WEEKDAY[word[:3]]
    rel = (m.group("enrel") or "").lower()
    monday = today - timedelta(days=today.weekday())
    if rel == "next":
        due = monday + timedelta(days=7 + weekday)  # "next Monday" = 下周一
    elif rel == "this":
        due = monday + timedelta(days=weekday)
    else:
        due = today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
    deadline = m.string[max(0, m.start() - 3):m.start()].lower().strip() in {"by", "y"}
    return due, deadline, due < today, None


def _r_enrel(m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, str | None]:
    word = " ".join(m.group("enr").lower().split())
    if word in {"tomorrow", "tmr", "tmrw"}:
        return today + timedelta(days=1), False, False, None
    if word == "day after tomorrow":
        return today + timedelta(days=2), False, False, None
    if word in {"end of week", "end of the week", "end of this week", "eow", "end of next week"}:
        friday = today + timedelta(days=4 - today.weekday())
        return (friday + timedelta(days=7) if "next" in word else max(friday, today)), True, False, None
    if word in {"end of month", "end of the month", "eom"}:
        return date(today.year, today.month, calendar.monthrange(today.year, today.month)[1]), True, False, None
    if word == "tonight":
        return today, False, False, "晚"
    if word == "today":
        return today, False, False, None
    return today, True, False, None  # EOD / COB: a deadline today


def _r_rightaway(_m: re.Match[str], today: date, _h: Sequence[Holiday]) -> tuple[date, bool, bool, str | None]:
    return today, True, False, None


_RESOLVERS = {
    "rightaway": _r_rightaway,
    "iso": _r_iso, "md": _r_md, "day": _r_day, "relday": _r_relday, "weekwithin": _r_weekwithin,
    "weekday": _r_weekday, "monthpart": _r_monthpart, "yearend": _r_yearend, "duration": _r_duration,
    "guo": _r_guo, "holiday": _r_holiday, "slash": _r_slash, "dotmd": _r_slash,
    "enday": _r_enday, "enrel": _r_enrel, "enmd": _r_enmd, "tiqian": lambda m, t, h: None, "eventrel": lambda m, t, h: None,
    "xun": _r_xun,
}
# expressions resolved against the date named before them, not against today
_RELATIVE = frozenset({"tiqian", "eventrel"})
_EVENT_OFFSET = {"前一天": -1, "前一晚": -1, "头一天": -1, "头天": -1, "当天": 0, "第二天": 1, "后一天": 1, "次日": 1}
