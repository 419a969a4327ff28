"""Named things in a message: contacts, the account (hospital), departments, competitors, products.

Everything is reported as written.  Dictionary matches come from compiled alternations; the
only place a tokenizer helps is the left edge of a hospital name ("今天去|华山医院",
"10点去|省肿瘤医院", but "和平医院" keeps its 和), so jieba is used only there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .lexicon import Lexicon
from .segment import Segmenter
from .text import LiteralMatcher, alternation

Span = tuple[int, int]
# characters that do not occur in given names but do in what precedes titles ("康复科主任", "跟陈处长")
_NOT_IN_GIVEN_NAMES = frozenset("的了和跟与给在是对把被说找见向约到去来让叫请问科处室部办院区市省县局厅组队司站所中长"
                                "这那个位们里外内上下副总床诊术务级班组医护")
# a word ending in a surname character before these is still a name prefix ("老李主任", "小王老师")
_NAME_PREFIXES = frozenset("小老大阿")
_HAS_LATIN = re.compile(r"[A-Za-z]")
# a hospital named as a reference, not as the customer ("提供华山医院的装机案例", "参考协和的配置")
_REFERENCE_AFTER = re.compile(r"(?:的|那边|那里)?(?:案例|用户|经验|数据|装机|使用情况|也在用|都在用|在用|用的是|用的|买的"
                              r"|价格|报价|一样|同款|中标价)")
_REFERENCE_BEFORE = re.compile(r"(?:参考|参照|比如|例如|像|对标|借鉴|学习|比照)$")
# an English hospital name in a mixed message: capitalised words (or "3rd") before Hospital/Memorial
_EN_HOSPITAL = re.compile(r"(?:(?:[A-Z][A-Za-z'\-]*|\d+(?:st|nd|rd|th))\s+){1,4}(?:Hospital|hospital|Memorial|Medical Center|Cancer Center|Heart Center)"
                          r"(?![A-Za-z])")
# capitalised words that open a sentence or a phrase but are no part of a name ("Visited Ruijin Hospital")
_EN_NOT_NAME = frozenset("""a an the at in to from for of and or with by on visited visit met meet went go going
called call sent send lost won follow followed back today tomorrow demo trial tender po quote quotation
i we he she they our their this that next last new""".split())
# English honorific + surname ("Dr. Zhang", "Prof Sun", "Ms. Chen")
_EN_CONTACT = re.compile(r"(?<![A-Za-z])(?:Dr|Prof|Ms|Mr|Mrs|Miss|Director|Dean)\.?\s?[A-Z][a-z]{1,10}(?![A-Za-z])")
# 老 + surname used as a name ("设备科老张说…"); only before words that make it a person
_OLD_SURNAME_AFTER = re.compile(r"[说讲让要那这的也还都跟和，,。\s反问打催回答]|$")
# a department that is a project or a description, not an office: "要建胸痛中心", "做眼科的", "政府采购中心";
# a district/county body is no hospital office ("由区采购中心统一招标"; but "病区", "院区" are the hospital's)
_DEPT_NOT_OFFICE_BEFORE = re.compile(r"(?:建|建设|筹建|新建|成立|创建|申报|创|政府|做|(?<![院病社园小校片城郊])[区县])$")
# the run of word characters before an anchor: punctuation, spaces and emoji end it ("🎉省妇幼", "📍市一院")
# "equipment procurement", "centralized procurement": an activity, not the office
_EN_ACTIVITY_BEFORE = re.compile(r"(?i:equipment|device|centrali[sz]ed|volume-based|joint|group|government|public|hybrid)\s+$")
_AFTER_LAST_BREAK = re.compile(r"[^\W_]*$")
# compiled here, not inline: re's shared pattern cache is churned by the rest of a server process
_EN_DEPT_NOUN = re.compile(r"\s+(?:meeting|committee|process|plan)")
_CLOCK_TOKEN = re.compile(r"\d+[点:：]?\d*|[零一二两三四五六七八九十]+点")
_THREE_DIGITS = re.compile(r"\d{3}")


@dataclass(frozen=True)
class Mention:
    text: str
    start: int
    end: int
    key: str = ""        # brand id for competitors
    confidence: float = 0.9


def _overlaps(start: int, end: int, spans: Sequence[Span]) -> bool:
    return any(s < end and start < e for s, e in spans)


class EntityFinder:
    """Compiled matchers for one lexicon."""

    def __init__(self, lexicon: Lexicon, segmenter: Segmenter) -> None:
        self._lex = lexicon
        self._seg = segmenter
        people = lexicon.people
        self._title_rx = re.compile(
            f"(?P<title>(?:副|常务副)?(?:{alternation(people.titles)}))")
        self._dept_rx = LiteralMatcher(lexicon.departments, ignore_case_ascii=True)
        self._dept_patterns = tuple(re.compile(p) for p in lexicon.department_patterns)
        # "附一 检验 …": a short form after the hospital and a space, ending at a space or the end
        self._dept_short_rx = re.compile(rf"\s*({alternation(lexicon.department_short_forms)})(?=\s|$)")
        own = {o.lower() for o in lexicon.own_brands}
        self._brand_of: dict[str, str] = {}
        self._brand_exclude: dict[str, re.Pattern[str]] = {}
        for brand in lexicon.brands:
            for form in brand.forms:
                if form.lower() not in own:
                    self._brand_of.setdefault(form.lower(), brand.id)
            if brand.exclude:
                self._brand_exclude[brand.id] = re.compile(alternation(brand.exclude))
        self._brand_rx = LiteralMatcher([f for b in lexicon.brands for f in b.forms if f.lower() not in own],
                                        ignore_case_ascii=True)
        self._product_rx = LiteralMatcher(lexicon.product_terms, ignore_case_ascii=True)
        self._modifier_rx = re.compile(f"(?:{alternation(lexicon.product_modifiers)})$")
        hosp = lexicon.hospitals
        self._anchor_rx = re.compile(alternation(hosp.anchors))
        self._short_rx = re.compile(hosp.short_anchor)
        self._alias_rx = LiteralMatcher(hosp.aliases)

    # ------------------------------------------------------------------ departments
    def departments(self, text: str, accounts: Sequence[Mention] = ()) -> list[Mention]:
        """Departments as written; where two overlap the longer one wins ("网络安全科", not its "全科").
        A short form ("检验", "超声") counts only right after a hospital ("附一 检验")."""
        guards = self._lex.department_guards
        cands = [Mention(m.group(), m.start(), m.end()) for m in self._dept_rx.finditer(text)
                 if text[m.end():m.end() + 1] not in guards.get(m.group()[-1], ())]
        for rx in self._dept_patterns:
            cands.extend(Mention(m.group(), m.start(), m.end()) for m in rx.finditer(text))
        for acc in accounts:
            m = self._dept_short_rx.match(text, acc.end)
            if m is not None:
                cands.append(Mention(m.group(1), m.start(1), m.end(1)))
        found: list[Mention] = []
        for d in sorted(cands, key=lambda d: (-(d.end - d.start), d.start)):
            if not _overlaps(d.start, d.end, [(f.start, f.end) for f in found]):
                found.append(d)
        found = [d for d in found if not self._not_office(text, d)]
        return sorted(found, key=lambda d: d.start)

    @staticmethod
    def _not_office(text: str, dept: Mention) -> bool:
        before = _DEPT_NOT_OFFICE_BEFORE.search(text, max(0, dept.start - 2), dept.start)
        if before is None:
            if dept.text.isascii() and (_EN_DEPT_NOUN.match(text[dept.end:dept.end + 12])
                                        or _EN_ACTIVITY_BEFORE.search(text, max(0, dept.start - 16), dept.start)):
                return True  # "procurement meeting", "equipment procurement": the activity, not the office
            return False
        if before.group() == "做":
            return text[dept.end:dept.end + 1] == "的"  # "做眼科的": what the hospital does
        return True

    # ------------------------------------------------------------------ contacts
    def contacts(self, text: str) -> list[Mention]:
        people = self._lex.people
        out: list[Mention] = []
        for m in self._title_rx.finditer(text):
            start, title = m.start(), m.group("title")
            bare_title = title.removeprefix("常务副").removeprefix("副") if title not in people.titles else title
            guard = people.guards.get(bare_title, ())
            if guard and text[m.end():m.end() + 1] in guard:
                continue
            surname = ""
            full = self._full_name(text, start)
            if full:
                surname = text[start - full:start]  # "王建华主任": a full name, reported as written
            elif start >= 2 and text[start - 2:start] in people.double_surnames:
                surname = text[start - 2:start]
            elif start >= 1 and text[start - 1] in people.surnames and not self._ends_word(text, start - 1):
                surname = text[start - 1]
            elif len(bare_title) >= 2 and self._short_full_name(text, start):
                surname = text[start - 2:start]  # "张伟主任": surname + one-character given name
            if not surname:
                continue
            begin = start - len(surname)
            name = text[begin:m.end()]
            if name in people.false_contacts:
                continue
            out.append(Mention(name, begin, m.end()))
        if _HAS_LATIN.search(text):
            out.extend(Mention(m.group(), m.start(), m.end()) for m in _EN_CONTACT.finditer(text))
        for i in range(len(text) - 1):
            if text[i] == "老" and text[i + 1] in people.surnames and _OLD_SURNAME_AFTER.match(text, i + 2) \
                    and not any(o.start <= i < o.end for o in out) and text[i:i + 2] not in people.blocked_bigrams:
                out.append(Mention(text[i:i + 2], i, i + 2))
        out.sort(key=lambda c: c.start)
        return out

    def _ends_word(self, text: str, pos: int) -> bool:
        """Is the (surname) character at ``pos`` the end of a word before it?  "分管|副院长",
        "验收单|护士长", "年轻|医生" — then it is no surname.  "老李主任" keeps 李."""
        people = self._lex.people
        for n in (2, 3):
            if pos - n + 1 < 0:
                break
            word = text[pos - n + 1:pos + 1]
            if word[0] in _NAME_PREFIXES and n == 2:
                continue
            if word in people.blocked_bigrams or (all("\u4e00" <= ch <= "\u9fff" for ch in word)
                                                   and self._seg.is_word(word)):
                return True
        return False

    def _short_full_name(self, text: str, title_start: int) -> bool:
        """Surname + one-character given name before a title ("张伟主任"), when the two characters
        are not an ordinary word ("项目主任", "年轻医生", "高级工程师")."""
        if title_start < 2:
            return False
        surname, given = text[title_start - 2], text[title_start - 1]
        if surname not in self._lex.people.surnames or not ("\u4e00" <= given <= "\u9fff") \
                or given in _NOT_IN_GIVEN_NAMES:
            return False
        if self._seg.is_word(text[title_start - 2:title_start]) or self._ends_word(text, title_start - 2):
            return False
        # the name must start after a break, a function word or a word ("费森尤斯护士长" is a brand)
        before = text[title_start - 3] if title_start >= 3 else ""
        return not ("\u4e00" <= before <= "\u9fff") or before in _NOT_IN_GIVEN_NAMES \
            or self._ends_word(text, title_start - 3)

    def _full_name(self, text: str, title_start: int) -> int:
        """Length of a surname + two-character given name right before a title ("王建华主任",
        "欧阳建国主任"), or 0."""
        people = self._lex.people
        given = text[max(0, title_start - 2):title_start]
        if title_start < 3 or any(not ("\u4e00" <= ch <= "\u9fff") or ch in _NOT_IN_GIVEN_NAMES for ch in given):
            return 0
        if title_start >= 4 and text[title_start - 4:title_start - 2] in people.double_surnames:
            return 4
        if text[title_start - 3] not in people.surnames:
            return 0
        if self._seg.is_word(text[title_start - 3:title_start - 1]) or self._ends_word(text, title_start - 3):
            return 0  # "包括石院长": 包括 is a word, 石院长 the name
        before = text[title_start - 4] if title_start >= 4 else ""
        return 3 if before not in people.surnames else 0

    # ------------------------------------------------------------------ competitors
    def competitors(self, text: str) -> list[Mention]:
        out: list[Mention] = []
        for m in self._brand_rx.finditer(text):
            bid = self._brand_of.get(m.group().lower())
            if bid is None:
                continue
            ex = self._brand_exclude.get(bid)
            if ex is not None and self._inside(ex, text, m.start(), m.end()):
                continue
            out.append(Mention(m.group(), m.start(), m.end(), key=bid))
        return out

    @staticmethod
    def _inside(rx: re.Pattern[str], text: str, start: int, end: int) -> bool:
        lo = max(0, start - 8)
        return any(x.start() + lo <= start and end <= x.end() + lo for x in rx.finditer(text[lo:end + 8]))

    # ------------------------------------------------------------------ products
    def products(self, text: str, blocked: Sequence[Span]) -> list[Mention]:
        out = []
        for m in self._product_rx.finditer(text):
            if _overlaps(m.start(), m.end(), blocked):
                continue
            mod = self._modifier_rx.search(text, max(0, m.start() - 6), m.start())
            start = mod.start() if mod else m.start()
            out.append(Mention(text[start:m.end()], start, m.end()))
        return out

    # ------------------------------------------------------------------ account
    def accounts(self, text: str) -> list[Mention]:
        """Hospital mentions in text order (longest wins where they overlap)."""
        hosp = self._lex.hospitals
        cands: list[Mention] = []
        for m in self._anchor_rx.finditer(text):
            end = m.end()
            # a following anchor continues the name ("妇幼" + "保健院")
            prefix = self._prefix(text, m.start())
            if not prefix:
                continue
            start = m.start() - len(prefix)
            cands.append(Mention(text[start:end], start, end, confidence=0.9))
        for m in self._short_rx.finditer(text):
            prefix = self._prefix(text, m.start())
            start = m.start() - len(prefix)
            cands.append(Mention(text[start:m.end()], start, m.end(), confidence=0.8))
        for m in self._alias_rx.finditer(text):
            cands.append(Mention(m.group(), m.start(), m.end(), confidence=0.95))
        if _HAS_LATIN.search(text):
            for m in _EN_HOSPITAL.finditer(text):
                words = m.group().split()
                while len(words) > 1 and words[0].lower() in _EN_NOT_NAME:
                    words.pop(0)
                if len(words) < 2:
                    continue
                start = m.end() - len(" ".join(words))
                cands.append(Mention(text[start:m.end()], start, m.end(), confidence=0.85))
        cands.sort(key=lambda c: (c.start, -(c.end - c.start)))
        out: list[Mention] = []
        for c in cands:
            if out and c.start < out[-1].end:
                if c.end > out[-1].end and c.start >= out[-1].start:
                    out[-1] = Mention(text[out[-1].start:c.end], out[-1].start, c.end, confidence=c.confidence)
                continue
            out.append(c)
        return [c for c in out if c.text not in hosp.anchors]

    @staticmethod
    def customer(text: str, accounts: Sequence[Mention]) -> Mention | None:
        """The customer among the hospitals named: the first one not cited as a reference
        ("要华山医院的装机案例", "参考协和的配置"); the first one when all are references."""
        for acc in accounts:
            if _REFERENCE_AFTER.match(text, acc.end) or _REFERENCE_BEFORE.search(text, max(0, acc.start - 4), acc.start):
                continue
            return acc
        return accounts[0] if accounts else None

    def _prefix(self, text: str, anchor_start: int) -> str:
        """The name part left of an anchor, up to a boundary word; '' when only generic words."""
        hosp = self._lex.hospitals
        lo = max(0, anchor_start - hosp.max_prefix)
        window = _AFTER_LAST_BREAK.search(text[lo:anchor_start]).group()  # type: ignore[union-attr]
        if not window:
            return ""
        tokens = self._seg.cut(window)
        kept: list[str] = []
        for token in reversed(tokens):
            if token in hosp.boundary_words:
                break
            if token in self._lex.departments and kept:
                break  # "骨科王主任说医院…" ends the name; "省骨科医院" is a specialty hospital
            if len(token) > 1 and token[-1] in hosp.boundary_chars and token not in hosp.aliases:
                break
            if _CLOCK_TOKEN.fullmatch(token) and not _THREE_DIGITS.fullmatch(token):
                break
            kept.append(token)
        kept.reverse()
        # generic leading words ("这家", "同级") are not part of a name
        while kept and kept[0] in hosp.generic_prefixes:
            kept.pop(0)
        prefix = "".join(kept)
        if not prefix:
            return ""
        # a name ending in a generic word is generic ("必须要有三甲医院"); a single character
        # after a name is its abbreviation ("吉大一院", "郑大一附院")
        if all(t in hosp.generic_prefixes for t in kept) or (kept[-1] in hosp.generic_prefixes and len(kept[-1]) > 1):
            return ""
        return prefix
