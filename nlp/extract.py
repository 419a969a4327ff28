"""Turn one rep message (typed or a voice transcript) into a structured follow-up note.

The pipeline is deliberately rule-based and lexicon-driven: sales ops can fix a miss by
editing TOML, every decision can be explained, and it runs at thousands of messages per
second in one process.  See the sibling modules for the reasoning behind each step.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .actions import ActionDetector
from .amounts import find_amount
from .classify import Classifier, StageResult
from .dates import find_dates
from .entities import EntityFinder
from .lexicon import Lexicon
from .segment import Segmenter
from .statmodel import DEFAULT_PATH, StatModel, combine_concerns, combine_stage, features, signal_names
from .text import Language

_DEFAULT_MODEL = object()


@dataclass
class NextAction:
    text: str
    due: date | None
    due_at: datetime | None
    owner: str = "rep"
    past: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "due": self.due.isoformat() if self.due else None,
                "due_at": self.due_at.isoformat() if self.due_at else None, "owner": self.owner}


@dataclass
class Note:
    stage: str | None = None
    concerns: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    next_action: NextAction | None = None
    contacts: list[str] = field(default_factory=list)
    account: str | None = None
    departments: list[str] = field(default_factory=list)
    amount: int | None = None
    competitors: list[str] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    confidence: dict[str, float] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the message carried nothing worth storing ("收到", "好的👍")."""
        return not (self.stage or self.concerns or self.cues or self.next_action or self.contacts
                    or self.account or self.departments or self.amount is not None or self.competitors
                    or self.products)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON contract (without "id")."""
        return {
            "stage": self.stage, "concerns": list(self.concerns), "cues": list(self.cues),
            "next_action": self.next_action.to_dict() if self.next_action else None,
            "contacts": list(self.contacts), "account": self.account, "departments": list(self.departments),
            "amount": self.amount, "competitors": list(self.competitors), "products": list(self.products),
            "missing": list(self.missing), "confidence": dict(self.confidence),
        }


def _join_split_dates(clauses: list[tuple[int, int]], dates) -> list[tuple[int, int]]:
    """A date written with a space inside ("next Monday", "EOD 之前") stays in one clause."""
    if not dates or len(clauses) < 2:
        return clauses
    out = [clauses[0]]
    for s, e in clauses[1:]:
        ps, pe = out[-1]
        if any(d.span[0] < pe and s < d.span[1] and d.span[0] < s for d in dates):
            out[-1] = (ps, e)
        else:
            out.append((s, e))
    return out


# a bare weekday ("周日", not "下周日"/"周日前") in a clause that reports what happened ("周日跟关主任吃了个饭",
# "周日也没闲着啊刚跟彭主任通了电话") is the one just past, not the next one
_BARE_WEEKDAY = re.compile(r"(?<![下上本这个])(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])")
_PAST_AFTER = re.compile(r"刚|已经|已|(?<![定约订排好])了(?!解)|过了")
_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
                  "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}


def _past_weekdays(text: str, dates: list, clauses: list[tuple[int, int]], today: date) -> list:
    out = []
    for d in dates:
        m = _BARE_WEEKDAY.match(text, d.span[0])
        if m is not None and not d.deadline and not d.past:
            end = next((e for s, e in clauses if s <= d.span[0] < e), len(text))
            if _PAST_AFTER.search(text, d.span[1], end):
                wd = _WEEKDAY_INDEX[m.group("wd")]
                day = today - timedelta(days=(today.weekday() - wd) % 7)
                d = replace(d, due=day, due_at=None, past=True)  # reported: done, even when it was today
        out.append(d)
    return out


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class Extractor:
    """Holds the compiled lexicon; ``extract`` is pure given (text, now)."""

    def __init__(self, lexicon: Lexicon, tz: str = "Asia/Shanghai", model: StatModel | None | object = _DEFAULT_MODEL
                 ) -> None:
        """``model``: the statistical stage/concern classifier; by default the shipped weights
        (``nlp/data/classifier.npz``) when present, ``None`` for the rules alone."""
        self.lexicon = lexicon
        self.tz = ZoneInfo(tz)
        self._lang = Language(lexicon.language)
        seg_words = [*lexicon.hospitals.aliases, *lexicon.departments, *lexicon.people.titles,
                     *lexicon.product_terms, *(f for b in lexicon.brands for f in b.forms),
                     *(w for w in lexicon.hospitals.boundary_words if len(w) > 1)]
        self.segmenter = Segmenter(seg_words)
        self._entities = EntityFinder(lexicon, self.segmenter)
        self._classifier = Classifier(lexicon, self._lang)
        self._actions = ActionDetector(lexicon.actions)
        if model is _DEFAULT_MODEL:
            model = StatModel.load(DEFAULT_PATH) if DEFAULT_PATH.exists() else None
        self.model: StatModel | None = model  # type: ignore[assignment]
        self._dominant = frozenset(g.code for g in lexicon.stages if g.dominant)
        self._implied = frozenset(g.code for g in lexicon.concerns if g.implied_by_competitor)

    def warm_up(self) -> None:
        """Load the tokenizer now instead of on the first hospital name (for servers)."""
        self.segmenter.initialize()
        self.extract("明天去市一院见王主任，报价80万")

    def now(self, now: datetime | None = None) -> datetime:
        if now is None:
            return datetime.now(self.tz)
        if now.tzinfo is None:
            return now.replace(tzinfo=self.tz)
        return now.astimezone(self.tz)

    def extract(self, text: str, now: datetime | None = None) -> Note:
        now = self.now(now)
        clean = self._lang.normalize(text or "")
        self.last_clean, self.last_signals = clean, []
        if not clean or self._lang.is_chatter(clean):
            return Note()
        dates = find_dates(clean, now, self.lexicon.holidays)
        clauses = self._lang.split_long(clean, _join_split_dates(Language.clauses(clean), dates),
                                        (d.span[0] for d in dates))
        dates = _past_weekdays(clean, dates, clauses, now.date())
        clauses = self._join_open_ba(clean, clauses)
        ent = self._entities

        competitors = ent.competitors(clean)
        comp_spans = [(c.start, c.end) for c in competitors]
        accounts = ent.accounts(clean)
        departments = [d for d in ent.departments(clean, accounts)
                       if not any(s < d.end and d.start < e for s, e in comp_spans)]
        blocked = [(d.start, d.end) for d in departments] + [(a.start, a.end) for a in accounts]
        customer = ent.customer(clean, accounts)
        contacts = [c for c in ent.contacts(clean)
                    if not any(a.start <= c.start < a.end for a in accounts)]
        products = ent.products(clean, blocked + comp_spans)
        amount = find_amount(clean)

        actions = self._actions.detect(clean, clauses, dates, now.date(),
                                       [(d.start, d.end) for d in departments] + [(c.start, c.end) for c in contacts])
        chosen = self._actions.choose(actions)
        if chosen is None:
            chosen = self._actions.appointment(clean, dates, [(a.start, a.end) for a in accounts]
                                               + [(d.start, d.end) for d in departments]
                                               + [(c.start, c.end) for c in contacts], now.date())
        trace: dict[str, list[str]] = {}
        vetoed: list[str] = []
        concern_hits = self._classifier.concern_hits(clean)
        stage = self._classifier.stage(clean, clauses, [a.span for a in actions], competitors,
                                       blocked, trace, self._classifier.delivery_worries(concern_hits))
        concerns = self._classifier.concerns(clean, clauses, competitors, [d.span for d in dates], vetoed,
                                             concern_hits)
        cues = self._classifier.cues(clean, clauses)
        self.last_signals = signal_names(trace["status"], trace["action"], concerns, vetoed, bool(competitors))
        if self.model is not None:
            pred = self.model.predict(features(clean, self.last_signals))
            combined = combine_stage((stage.code, stage.confidence) if stage else None, trace["status"],
                                     trace["action"], pred, self.model.policy, self._dominant)
            stage = StageResult(*combined) if combined else None
            concerns = combine_concerns(concerns, vetoed, pred, self.model.policy,
                                        self._implied if competitors else ())

        next_action = None
        if chosen is not None:
            due = chosen.due
            next_action = NextAction(chosen.text, due.due if due else None, due.due_at if due else None,
                                     past=bool(due and due.past))
        brands_seen: set[str] = set()
        competitor_names = []
        for comp in competitors:
            if comp.key not in brands_seen:
                brands_seen.add(comp.key)
                competitor_names.append(comp.text)

        note = Note(
            stage=stage.code if stage else None, concerns=concerns, cues=cues, next_action=next_action,
            contacts=_unique([c.text for c in contacts]), account=customer.text if customer else None,
            departments=_unique([d.text for d in departments]), amount=amount[0] if amount else None,
            competitors=competitor_names, products=_unique([p.text for p in products]),
        )
        if note.is_empty():
            return Note()
        note.confidence = self._confidence(note, stage.confidence if stage else 0.0,
                                           customer.confidence if customer else 0.0)
        note.missing = self._missing(note)
        return note

    def _join_open_ba(self, text: str, clauses: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """A 把-object cut off from its verb by a space ("EOD 之前把 NMPA 证书 发给 Prof. Lin") stays one clause."""
        if len(clauses) < 2 or "把" not in text:
            return clauses
        out = [clauses[0]]
        for s, e in clauses[1:]:
            ps, pe = out[-1]
            ba = text.rfind("把", ps, pe)
            if ba >= 0 and not text[pe:s].strip() and self._actions._verb(text[ba + 1:pe]) is None:
                out[-1] = (ps, e)
            else:
                out.append((s, e))
        return out

    def _missing(self, note: Note) -> list[str]:
        required = self.lexicon.required.get(note.stage or "default", self.lexicon.required["default"])
        missing = []
        for name in required:
            if name == "due":
                if note.next_action is not None and note.next_action.due is None:
                    missing.append(name)
            elif name == "next_action":
                if note.next_action is None:
                    missing.append(name)
            elif getattr(note, name) in (None, [], ""):
                missing.append(name)
        return missing

    @staticmethod
    def _confidence(note: Note, stage_conf: float, account_conf: float) -> dict[str, float]:
        conf: dict[str, float] = {}
        if note.stage:
            conf["stage"] = stage_conf
        if note.account:
            conf["account"] = account_conf
        if note.contacts:
            conf["contacts"] = 0.9
        if note.departments:
            conf["departments"] = 0.9
        if note.amount is not None:
            conf["amount"] = 0.95
        if note.competitors:
            conf["competitors"] = 0.9
        if note.products:
            conf["products"] = 0.8
        if note.concerns:
            conf["concerns"] = 0.75
        if note.cues:
            conf["cues"] = 0.8
        if note.next_action:
            conf["next_action"] = 0.75
            conf["due"] = 0.9 if note.next_action.due and not note.next_action.past else 0.5
        return conf
