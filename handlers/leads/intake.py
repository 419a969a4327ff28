"""Lead input: one shape for every way a lead arrives, and the checks at the door.

Leads come from a CSV/XLSX export (``genjin leads import FILE``, read by :mod:`handlers.leads.files`), the HTTP API
(``POST /api/leads``) and the chat short form (``#线索 …``).  All three produce a
:class:`LeadInput`; normalisation (phone, grade, region) happens once here so rules and
duplicate detection compare like with like.

Two kinds of problems are kept apart on purpose:

* *format* problems (a date that is not a date, an unknown column, a field too long for the
  database) make a file or API body unusable; files are all-or-nothing so a half-imported
  export never has to be untangled;
* *quality* problems (no phone, a phone that is not a Chinese number) are properties of a
  real lead that a person must fix; such leads are accepted and quarantined, not routed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")

# Column sizes of storage.models.Lead (and a sane bound for the fields kept in payload).
MAX_LENGTH = {
    "external_id": 128, "hospital": 128, "department": 64, "contact": 64, "phone": 32, "region": 64,
    "product_line": 64, "grade": 16, "source": 64, "note": 2000,
}
FIELD_LABELS = {
    "external_id": "编号", "hospital": "医院", "department": "科室", "contact": "联系人", "phone": "电话",
    "region": "区域", "product_line": "产品线", "grade": "医院等级", "source": "来源", "created_at": "创建时间",
    "note": "备注",
}
MAX_API_BATCH = 1000


@dataclass(frozen=True, slots=True)
class LeadInput:
    """A lead as received, before it is stored. Empty text means "not given"."""

    external_id: str = ""
    hospital: str = ""
    department: str = ""
    contact: str = ""
    phone: str = ""
    region: str = ""
    product_line: str = ""
    grade: str = ""
    source: str = ""
    created_at: datetime | None = None
    note: str = ""

    def normalized(self) -> LeadInput:
        """Trimmed text, a normalised phone when it is valid, canonical grade and region.

        An invalid phone is kept as typed (trimmed) so the quarantine message can show it.
        """
        text = {f.name: _clean(getattr(self, f.name)) for f in fields(self) if f.name != "created_at"}
        phone = normalize_phone(text["phone"])
        text["phone"] = phone or text["phone"]
        text["grade"] = normalize_grade(text["grade"])
        text["region"] = normalize_region(text["region"])
        return replace(self, **text)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        return data


def _clean(value: str) -> str:
    """NFKC folds full-width letters/digits/spaces (common in pasted Excel cells)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value or "")).strip()


# ------------------------------------------------------------------ phone, grade, region

_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-–—()（）.]")
_EXT_MARK = re.compile(r"^(.*?\d)\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})$", re.IGNORECASE)
_EXT_DASH = re.compile(r"^(.*\d)\s*-\s*(\d{1,6})$")


def normalize_phone(raw: str) -> str | None:
    """A Chinese mobile → ``13812345678``; a landline → ``021-12345678`` (``-123`` extension).

    Returns ``None`` when the text is not a valid number, so callers can tell "invalid" from
    "normalised".  Landlines need the area code: a bare 8-digit number is ambiguous across
    cities and cannot be dialled from a rep's mobile in another province.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if not text:
        return None
    ext = ""
    marked = _EXT_MARK.match(text)
    if marked:
        text, ext = marked.groups()
    else:
        dashed = _EXT_DASH.match(text)
        if dashed and text.count("-") >= 2 and _landline(_digits(dashed.group(1)), "") is not None:
            text, ext = dashed.groups()
    digits = _digits(text)
    if digits is None:
        return None
    if not ext and _MOBILE.fullmatch(digits):
        return digits
    return _landline(digits, ext)


def _digits(text: str) -> str | None:
    """Digits without separators and without the country code (+86, 0086, 86)."""
    compact = _PHONE_NOISE.sub("", text)
    international = compact.startswith(("+86", "0086")) or (compact.startswith("86") and len(compact) >= 12)
    compact = compact.removeprefix("+").removeprefix("00")
    if international:
        compact = compact[2:]
        if not compact.startswith("0") and not _MOBILE.fullmatch(compact):
            compact = "0" + compact  # +86 21 12345678 drops the trunk 0
    return compact if compact.isdigit() else None


def _landline(digits: str, ext: str) -> str | None:
    """010 and 02x are 3-digit area codes with 8-digit numbers; 03xx–09xx take 7 or 8 digits."""
    if digits.startswith(("010", "02")):
        area, number = digits[:3], digits[3:]
        ok = len(number) == 8
    elif len(digits) > 1 and digits[0] == "0" and digits[1] in "3456789":
        area, number = digits[:4], digits[4:]
        ok = len(number) in (7, 8)
    else:
        return None
    if not ok or number[0] == "0":
        return None
    return f"{area}-{number}" + (f"-{ext}" if ext else "")


_GRADE_LEVEL = {"三": "三", "3": "三", "III": "三", "二": "二", "2": "二", "II": "二", "一": "一", "1": "一", "I": "一"}
_GRADE_CLASS = {"甲": "甲", "A": "甲", "乙": "乙", "B": "乙", "丙": "丙", "C": "丙", "特": "特", "S": "特"}
_GRADE_FULL = re.compile(r"^(III|II|I|[三二一321])(?:级|级别)?(?:([甲乙丙特ABCS])(?:等|级)?)?(?:医院)?$")


def normalize_grade(raw: str) -> str:
    """三级甲等 / 3A / 3甲 / 三甲医院 → ``三甲``; 三级 → ``三级``; unknown text is kept as given.

    Keeping unknown text (instead of rejecting it) lets a rule on an unusual grade still be
    written, and ``rules.check`` reports rule grades that are not canonical.
    """
    text = _clean(raw).upper().replace(" ", "")
    if not text:
        return ""
    m = _GRADE_FULL.match(text)
    if not m:
        return _clean(raw)
    level, klass = _GRADE_LEVEL[m.group(1)], m.group(2)
    return f"{level}{_GRADE_CLASS[klass]}" if klass else f"{level}级"


CANONICAL_GRADES = frozenset(f"{lv}{cl}" for lv in "三二一" for cl in "甲乙丙") | {"三特", "三级", "二级", "一级"}

_REGION_LONG = {
    "内蒙古自治区": "内蒙古", "广西壮族自治区": "广西", "西藏自治区": "西藏", "宁夏回族自治区": "宁夏",
    "新疆维吾尔自治区": "新疆", "香港特别行政区": "香港", "澳门特别行政区": "澳门",
}


def normalize_region(raw: str) -> str:
    """Province-level names as the org file writes them: 上海市 → 上海, 江苏省 → 江苏.

    Cities (苏州市) keep their name without 市; rules should then list cities explicitly.
    """
    text = _clean(raw).replace(" ", "")
    if text in _REGION_LONG:
        return _REGION_LONG[text]
    if len(text) > 2 and text[-1] in "省市":
        return text[:-1]
    return text


# ------------------------------------------------------------------ quality

def quality_problems(lead: LeadInput, required: Sequence[str] = ("hospital", "phone")) -> list[str]:
    """What a person must fix before this lead can be routed (in Chinese, for the quarantine card).

    Expects a :meth:`LeadInput.normalized` lead. An empty list means the lead may be routed.
    """
    problems = [f"缺少{FIELD_LABELS.get(name, name)}" for name in required if not _present(lead, name)]
    if lead.phone and normalize_phone(lead.phone) is None:
        problems.append(f"电话号码无效：{lead.phone}（需手机号或带区号的座机）")
    return problems


# Public names for the file reader (handlers.leads.files), which shares the cell rules.
def clean_text(value: str) -> str:
    return _clean(value)


def cell_text(value: Any) -> str:
    return _cell_text(value)


def _present(lead: LeadInput, name: str) -> bool:
    value = getattr(lead, name)
    return value is not None and value != ""


# ------------------------------------------------------------------ row values

@dataclass(frozen=True, slots=True)
class RowError:
    """One reason an import is refused; ``line`` is 1-based with the header on line 1."""

    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        where = f"第{self.line}行" + (f" {FIELD_LABELS.get(self.field, self.field)}" if self.field else "")
        return f"{where}：{self.problem}"


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
                 "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日", "%Y.%m.%d")


def parse_datetime(value: Any, tz: ZoneInfo = DEFAULT_TZ) -> datetime:
    """ISO 8601 or the usual Excel/CRM spellings; naive times are local (Beijing) time.

    Raises ``ValueError`` with a Chinese message.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = _clean(str(value))
        parsed = None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for fmt in _DATE_FORMATS:
                try:
                    parsed = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if parsed is None:
            raise ValueError(f"无法识别的时间 {text!r}（例：2024-05-01 09:30）")
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def _cell_text(value: Any) -> str:
    """Excel stores phones typed as numbers as floats (1.38e10); show them as digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def lead_from_values(values: Mapping[str, Any], line: int, tz: ZoneInfo = DEFAULT_TZ) -> tuple[LeadInput | None, list[RowError]]:
    """Build a normalised lead from field → raw value; format errors name the line and field."""
    errors: list[RowError] = []
    text: dict[str, str] = {}
    for name, raw in values.items():
        if name == "created_at":
            continue
        value = _clean(_cell_text(raw))
        if len(value) > MAX_LENGTH[name]:
            errors.append(RowError(line, name, f"超过{MAX_LENGTH[name]}个字符"))
        text[name] = value
    created_at = None
    raw_created = values.get("created_at")
    if raw_created not in (None, ""):
        try:
            created_at = parse_datetime(raw_created, tz)
        except ValueError as exc:
            errors.append(RowError(line, "created_at", str(exc)))
    if errors:
        return None, errors
    return LeadInput(**text, created_at=created_at).normalized(), []


# ------------------------------------------------------------------ HTTP API

API_FIELDS = {f.name for f in fields(LeadInput)} | {"id"}


def parse_api_payload(obj: Any, tz: ZoneInfo = DEFAULT_TZ) -> tuple[list[LeadInput], list[dict[str, Any]]]:
    """Validate a ``POST /api/leads`` body (one object or a list), all or nothing.

    Errors follow the usual 422 shape ``{"loc": [...], "msg": ..., "type": ...}`` so API
    clients that already parse FastAPI/pydantic errors need nothing new.  Quality problems
    are *not* errors here: a lead without a phone is accepted and quarantined.
    """
    items = obj if isinstance(obj, list) else [obj]
    single = not isinstance(obj, list)
    if not items:
        return [], [_api_error(["body"], "列表为空", "too_short")]
    if len(items) > MAX_API_BATCH:
        return [], [_api_error(["body"], f"一次最多 {MAX_API_BATCH} 条", "too_long")]
    leads: list[LeadInput] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        loc: list[Any] = ["body"] if single else ["body", index]
        if not isinstance(item, dict):
            errors.append(_api_error(loc, "应为对象", "dict_type"))
            continue
        item_errors = [_api_error([*loc, key], "未知字段", "extra_forbidden") for key in item if key not in API_FIELDS]
        values: dict[str, Any] = {}
        for key, value in item.items():
            if key not in API_FIELDS:
                continue
            name = "external_id" if key == "id" else key
            if value is not None and not isinstance(value, (str, int)) or isinstance(value, bool):
                item_errors.append(_api_error([*loc, key], "应为字符串", "string_type"))
            else:
                values[name] = value
        if item_errors:
            errors.extend(item_errors)
            continue
        lead, row_errors = lead_from_values({k: values.get(k) for k in (*MAX_LENGTH, "created_at")}, index + 1, tz)
        for e in row_errors:
            errors.append(_api_error([*loc, "id" if e.field == "external_id" and "id" in item else e.field],
                                     e.problem, "value_error"))
        if lead is not None and lead.external_id:
            if lead.external_id in seen:
                errors.append(_api_error([*loc, "external_id"], "编号在本次请求中重复", "value_error"))
            seen.add(lead.external_id)
        if lead is not None:
            leads.append(lead)
    return ([], errors) if errors else (leads, [])


def _api_error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


# ------------------------------------------------------------------ chat short form

CHAT_TAG = "#线索"
_EMPTY_MARK = {"-", "—", "无", "空", "/", "_"}
_PHONE_IN_TEXT = re.compile(r"(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}|0\d{2,3}-?\d{7,8}(?:(?:转|-)\d{1,6})?")
_GRADE_IN_TEXT = re.compile(r"三级[甲乙丙]等|[三二一]级[甲乙丙]?|[三二一][甲乙丙]|[123][ABC]\b")


def parse_chat_lead(text: str, extract: Callable[[str], Any] | None = None,
                    product_lines: Iterable[str] = (), now: datetime | None = None) -> LeadInput | None:
    """``#线索 医院 科室 联系人 电话 产品线 等级 来源`` → a lead, or free text via the extractor.

    The positional form is used when the fourth word is a phone number; ``-``/``无`` leave a
    field empty.  Anything else is free text: the phone and grade are found by pattern, the
    product line by the names sales ops configured, and hospital/department/contact by
    ``extract(text)`` (an :class:`nlp.extract.Extractor`'s ``extract``; any object with
    ``account``, ``departments`` and ``contacts`` works).  Returns ``None`` when the message
    is not a lead message.
    """
    body = _clean(text)
    if not body.startswith(CHAT_TAG):
        return None
    body = body[len(CHAT_TAG):].strip(" :：")
    words = body.split()
    if len(words) >= 4 and normalize_phone(words[3]) is not None:
        names = ("hospital", "department", "contact", "phone", "product_line", "grade", "source")
        values = {name: ("" if word in _EMPTY_MARK else word) for name, word in zip(names, words)}
        values["source"] = values.get("source") or "chat"
        return LeadInput(**values, note=" ".join(words[len(names):]), created_at=now).normalized()
    return _free_text_lead(body, extract, product_lines, now)


def _free_text_lead(body: str, extract: Callable[[str], Any] | None, product_lines: Iterable[str],
                    now: datetime | None) -> LeadInput:
    phone_match = _PHONE_IN_TEXT.search(body)
    grade_match = _GRADE_IN_TEXT.search(body)
    product = next((p for p in sorted(product_lines, key=len, reverse=True) if p and p.lower() in body.lower()), "")
    note = extract(body) if extract is not None and body else None
    departments = list(getattr(note, "departments", None) or [])
    contacts = list(getattr(note, "contacts", None) or [])
    return LeadInput(
        hospital=getattr(note, "account", None) or "",
        department=departments[0] if departments else "",
        contact=contacts[0] if contacts else "",
        phone=phone_match.group(0) if phone_match else "",
        product_line=product,
        grade=grade_match.group(0) if grade_match else "",
        source="chat",
        created_at=now,
        note=body,
    ).normalized()
