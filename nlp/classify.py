"""Stage, concerns and cues from lexicon keywords, with clause-scoped negation.

Stage: the first stage keyword in a clause that reports the situation wins; keywords in the
rep's own action clauses ("下周安排装机") only count when nothing else does, because the
deal is where it is now, not where the next step leads.  A dominant stage (lost) wins
outright, including a competitor named as the winner ("最后选了威高").

Concerns: every non-negated keyword outside positively framed clauses; a competitor
mention is itself a competitor concern (the corpus labels "比美敦力贵", "对手有微创",
"迈瑞和联影都来过了" that way).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .entities import Mention
from .lexicon import Lexicon
from .text import Hit, KeywordScanner, Language, clause_index

# an event named only as the place where people met is not the stage ("学术会上认识的", "推介会上加的微信")
_VENUE = re.compile(r"(?:上|中|时|期间|的时候)(?:认识|碰到|遇到|结识|加的|加了|加上|搭上|聊上)")
# contrast words: praise before them does not cover a complaint after them ("反馈不错，就是操作复杂")
_CONTRAST = re.compile(r"但是|但|就是|只是|可是|不过|然而|却|唯一|美中不足|问题是")
# our own offer of a discount is a negotiation move, not the customer's price objection
# ("我们报价打九五折"); a cut the customer asks of us still is ("要求我们再降5个点")
_OWN_SUBJECT = re.compile(r"(?<![让要请叫求])(?:我们|我司|我方|咱们|老板|公司|经理)")
# "价格可以再让3个点", "还能再降两个点": a concession we can make (a cue), not the customer's objection
_CAN_OFFER_BEFORE = re.compile(r"(?:可以|能|还能|还可以|最多能|最低能)(?:再)?$")
# our price being the lower one is no price objection ("我们的报价比联影低10%")
_OUR_PRICE_LOWER = re.compile(r"(?:我们|我司|咱们)的?(?:报价|价格)[^，。；]{0,6}(?:低|便宜)")
_OFFER = re.compile(r"折|让|降|优惠")
_ASK = re.compile(r"要求|希望|想|让(?:我|咱)|要(?:我|咱)|逼")
_SENTENCE_END = re.compile(r"[。！!？?\n]")
# a lead time is not the delivery event itself ("只要两周交付", "一个月内就能到货")
_LEAD_TIME = re.compile(r"[\d一二两三四五六七八九十几半]+(?:个)?(?:周|星期|礼拜|天|月)(?:内|之内)?"
                        r"(?:就能|就可以|才能|能|可以|才|就)?$")
# a step already taken is no obstacle ("已经签字了", "早就审批了")
# stages that describe the customer's state: in the rep's own action clause the words are about us
_CUSTOMER_STATE = frozenset({"needs"})
# ...unless someone else's words, requests or plans are reported there ("主任说想换", "让我们先给个参考报价",
# "They are planning to replace…")
_REPORTED = re.compile(r"说|表示|提到|反映|反馈|称|讲|(?:让|要|请)(?:我们|我)"
                       r"|(?i:\b(?:they|he|she|the (?:hospital|department|customer|client))\b)")
# a sample unit shown in a demonstration is the demo's prop, not a trial ("带样机去做了现场演示",
# "样机演示完了"): in a clause that names a demo these trial words give way to it
_DEMO_PROPS = frozenset({"样机", "样品", "试机"})
_DONE_BEFORE = re.compile(r"(?:已经|已|早就|都已经)$")
# a stage word behind 才能 names the event a condition waits for, not where the deal is
# ("要先变更了才能入库", "批下来才能启动招标")
_CONDITION_BEFORE = re.compile(r"才(?:能|可以|会)(?:启动|开始|走|进行|安排|正式)?$")


@dataclass(frozen=True)
class StageResult:
    code: str
    confidence: float


class Classifier:
    def __init__(self, lexicon: Lexicon, language: Language) -> None:
        self._lex = lexicon
        self._lang = language
        self._stages = KeywordScanner(lexicon.stages)
        self._concerns = KeywordScanner(lexicon.concerns)
        self._cues = KeywordScanner(lexicon.cues)
        self._stage = {g.code: g for g in lexicon.stages}
        self._implied = [g.code for g in lexicon.concerns if g.implied_by_competitor]
        self._concern_keeps = {g.code for g in lexicon.concerns if g.negation_keeps}

    def stage(self, text: str, clauses: Sequence[tuple[int, int]], action_spans: Sequence[tuple[int, int]],
              competitors: Sequence[Mention], names: Sequence[tuple[int, int]] = (),
              trace: dict[str, list[str]] | None = None,
              worries: Sequence[tuple[int, int]] = ()) -> StageResult | None:
        """``names``: spans of departments/accounts; a keyword inside one ("招标办") is no signal.
        ``trace``, when given, receives the codes of the status and action hits (the statistical
        model uses them as features and to break ties).  ``worries``: spans of delivery-speed
        concerns; a delivery word inside one ("问最快什么时候能发货", "要求月底前装好") is the
        customer's worry about a delivery still ahead, not the delivery stage; a worry that is just
        the stage word itself ("断货") keeps it."""
        status_hits: list[tuple[int, str]] = []
        action_hits: list[tuple[int, str]] = []
        hits = self._stages.scan(text)
        demo_clauses = {clause_index(clauses, h.start) for h in hits if h.code == "demo"} if clauses else set()
        for hit in hits:
            i = clause_index(clauses, hit.start)
            s, e = clauses[i] if clauses else (0, len(text))
            group = self._stage[hit.code]
            if _VENUE.match(text, hit.end, min(e, hit.end + 6)) or \
                    any(a <= hit.start and hit.end <= b for a, b in names) or \
                    (hit.code == "delivery" and (_LEAD_TIME.search(text, max(s, hit.start - 10), hit.start)
                                                 or any(a <= hit.start and hit.end <= b and b - a > hit.end - hit.start
                                                        for a, b in worries))) or \
                    (hit.code == "trial" and hit.text in _DEMO_PROPS and i in demo_clauses) or \
                    _CONDITION_BEFORE.search(text, max(s, hit.start - 6), hit.start):
                continue
            # only a negation before the keyword denies the stage ("还没签合同"); words after it
            # judge how it went ("演示很顺利", "验收没问题")
            if not group.negation_keeps and self._lang.negated(text[s:e], hit.start - s, hit.end - s, after=False):
                continue
            in_action = any(a <= hit.start < b for a, b in action_spans)
            if in_action and hit.code in _CUSTOMER_STATE and not _REPORTED.search(text, s, hit.start):
                continue  # "周四去招标办了解一下流程": our own step, not the customer's need
            (action_hits if in_action else status_hits).append((hit.start, hit.code))
        for group in self._lex.stages:
            if group.competitor_before or group.competitor_after:
                for comp in competitors:
                    before = text[max(0, comp.start - 6):comp.start]
                    i = clause_index(clauses, comp.start)
                    after = text[comp.end:min(comp.end + 10, clauses[i][1] if clauses else len(text))]
                    if any(before.endswith(w) for w in group.competitor_before) or \
                            any(w in after for w in group.competitor_after):
                        status_hits.append((comp.start, group.code))
        if trace is not None:
            trace["status"] = [c for _, c in sorted(status_hits)]
            trace["action"] = [c for _, c in sorted(action_hits)]
        for hits in (status_hits, action_hits):
            dominant = [h for h in hits if self._stage[h[1]].dominant]
            if dominant:
                return StageResult(min(dominant)[1], 0.9)
        if status_hits:
            return StageResult(min(status_hits)[1], 0.85)
        if action_hits:
            return StageResult(min(action_hits)[1], 0.65)
        return None

    def concern_hits(self, text: str) -> list[Hit]:
        """The raw concern keyword hits, scanned once for both ``stage`` (delivery worries) and ``concerns``."""
        return self._concerns.scan(text)

    @staticmethod
    def delivery_worries(hits: Sequence[Hit]) -> list[tuple[int, int]]:
        """Spans of delivery-speed concern matches (see ``stage``)."""
        return [(h.start, h.end) for h in hits if h.code == "delivery"]

    def concerns(self, text: str, clauses: Sequence[tuple[int, int]], competitors: Sequence[Mention],
                 dates: Sequence[tuple[int, int]] = (), vetoed: list[str] | None = None,
                 hits: Sequence[Hit] | None = None) -> list[str]:
        """``vetoed``, when given, receives the codes whose keywords were present but negated,
        praised or otherwise ruled out: the statistical model may not add those.  ``hits``: the
        result of ``concern_hits`` when the caller already has it."""
        found: list[tuple[int, str]] = []
        vetoes: list[str] = []
        for hit in self._concerns.scan(text) if hits is None else hits:
            i = clause_index(clauses, hit.start)
            s, e = clauses[i] if clauses else (0, len(text))
            if self._praised(text, s, e, hit.start):
                vetoes.append(hit.code)
                continue
            if hit.code == "price" and (self._own_offer(self._sentence_before(text, hit.start), hit.text)
                                        or _CAN_OFFER_BEFORE.search(text, max(s, hit.start - 5), hit.start)
                                        or _OUR_PRICE_LOWER.match(text, max(s, hit.start - 4), hit.end + 6)
                                        or _OUR_PRICE_LOWER.search(text, s, min(e, hit.end + 2)) and hit.start - s < 12):
                vetoes.append(hit.code)
                continue
            if hit.code == "service" and dates and any(0 <= hit.start - d[1] <= 2 for d in dates):
                vetoes.append(hit.code)
                continue  # "下周一培训": training on a date is a scheduled activity, not a complaint
            if hit.code in self._concern_keeps and _DONE_BEFORE.search(text, max(s, hit.start - 4), hit.start):
                vetoes.append(hit.code)
                continue
            if i + 1 < len(clauses) and text[e:clauses[i + 1][0]].isspace():
                e = clauses[i + 1][1]  # shorthand puts the verdict after a space: "参数论证 通过"
            if self._lang.negated(text[s:e], hit.start - s, hit.end - s, before=hit.code not in self._concern_keeps):
                vetoes.append(hit.code)
                continue
            found.append((hit.start, hit.code))
        for comp in competitors:
            i = clause_index(clauses, comp.start)
            s, e = clauses[i] if clauses else (0, len(text))
            if not self._lang.negated(text[s:e], comp.start - s, comp.end - s):
                found.extend((comp.start, code) for code in self._implied)
        if vetoed is not None:
            vetoed.extend(dict.fromkeys(vetoes))
        return _ordered_codes(found)

    def _praised(self, text: str, s: int, e: int, pos: int) -> bool:
        """Is the keyword at ``pos`` inside praise?  Only the stretch of the clause between contrast
        words counts: "雷主任很满意，但…换人了" keeps the complaint after 但."""
        lo, hi = s, e
        for m in _CONTRAST.finditer(text, s, e):
            if m.end() <= pos:
                lo = m.end()
            elif m.start() > pos:
                hi = m.start()
                break
        return self._lang.positive(text[lo:hi])

    @staticmethod
    def _sentence_before(text: str, pos: int) -> str:
        lo = max(0, pos - 24)
        last = None
        for last in _SENTENCE_END.finditer(text, lo, pos):
            pass
        return text[last.end() if last else lo:pos]

    @staticmethod
    def _own_offer(before: str, keyword: str) -> bool:
        if not _OFFER.search(keyword):
            return False
        own = None
        for own in _OWN_SUBJECT.finditer(before):
            pass
        return own is not None and not _ASK.search(before, own.end())

    def cues(self, text: str, clauses: Sequence[tuple[int, int]]) -> list[str]:
        found = []
        for hit in self._cues.scan(text):
            i = clause_index(clauses, hit.start)
            s, e = clauses[i] if clauses else (0, len(text))
            if not self._lang.negated(text[s:e], hit.start - s, hit.end - s):
                found.append((hit.start, hit.code))
        return _ordered_codes(found)


def _ordered_codes(found: list[tuple[int, str]]) -> list[str]:
    return list(dict.fromkeys(code for _, code in sorted(found)))
