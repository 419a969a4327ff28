"""Does the message commit the rep to a next step, and when?

A clause is an action when it has a rep verb ("发", "拜访", "跟进", "签") and a commitment
signal — a date that is today or later, a future marker ("下周", "接下来", "准备"), a first
person subject, a 把-construction or a request to us ("让我们准备…") — and it is not a
report of what already happened ("留了电话", "报价单已经发了") or of what someone else
said they would do ("王主任说下周去北京开会").  A clause that is only a date ("…，周四前。")
belongs to the action next to it.  Of several actions, the one due first wins.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Sequence

from .dates import DueDate
from .lexicon import ActionWords
from .text import alternation

_SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s|$)")
_DATE_ONLY_REST = re.compile(r"^[\s的吧呢啊了之前内以为止截至，。,.!！?？;；~]*"
                             # "下周三前给", "docs due 10/20", "scheduled next Wednesday": a bare give/send verb or an
                             # English scheduling word leaves the date apart from the action it belongs to
                             r"(?:(?:给|发|交|回|报|要)[\s吧啊了，。,.!！~]*"
                             r"|(?i:(?:[A-Za-z]+\s+)?(?:due|scheduled(?:\s+for)?|set\s+for|planned\s+for|by|on|target|deadline"
                             r"|ETA)\s*)|(?:截止|期限|deadline)\s*)?"
                             r"[\s的吧呢啊了之前内以为止截至，。,.!！?？;；~]*$")
# a verb directly followed by experiential 过 reports something done ("跟经理确认过", "聊过");
# not 过去/过来 (directions), 过一遍/过一下 (a review still to do)
_EXPERIENTIAL = re.compile(r"过(?![去来一目])")
# an obligation word: with a deadline it makes a commitment even when the verb is unknown ("下周一前要提质疑")
_MODAL_AFTER = re.compile(r"(?:我们|我|咱们)?(?:一定|务必|必须|需要|要|得)")
# a question ("明天几点开会来着？", "你能帮我整理周报吗") or a forecast ("估计下周能签") commits to nothing
_QUESTION_END = re.compile(r"(?:吗|么|来着|呢)[\s]*$")
_FORECAST = re.compile(r"估计|可能|应该会|大概会|说不定|或许")
_OWN_BEFORE = re.compile(r"(?:^|[，,\s])(?:我们|我|咱们|咱)(?:这边)?(?:争取|尽量|会)?$")
_OWN_AFTER = re.compile(r"\s*(?:我们|我|咱们|咱)(?:这边)?(?:先|再|就|会|争取|尽量)?")
_REQUEST_TO_REP = re.compile(r"(?:让|要|叫|请|要求|希望|需要)(?:我们|我|咱们|咱)(?:先|再|尽快|马上)?")
_GIVE_PRONOUN = re.compile(r"(给|跟|和|找)(?:他们|她们|他|她)(?![们])")
_LEAD = re.compile(r"^(?:[，,。\s]|我们|我|咱们|咱|先|再|就|然后|还要|还得|要|得|会)+")
# English words left dangling once the date is cut out ("send the quote by", "follow up on"), and
# brackets emptied by it ("26号（下周四）")
_DANGLING = re.compile(r"(?i)(?:\s+(?:by|on|before|until|till|due|at|this|next|in)\s*)+$|^(?:by|on|before|until|due)\s+")
_EMPTY_BRACKETS = re.compile(r"[(（]\s*[)）]")
# what may be left of an appointment note besides the date, names and meeting words
_APPOINTMENT_FILLER = re.compile(r"[\s,，.。:：;；!！~+＋&/、]|在|去|见|跟|和|的|约了?|约")
# compiled here, not inline: re's shared pattern cache is churned by the rest of a server process
_LATIN_EDGE = re.compile(r"[A-Za-z]\s*$|^\s*[A-Za-z]")


class _NoMatch:
    @staticmethod
    def start() -> int:
        return 0


_NO_MATCH = _NoMatch()


@dataclass(frozen=True)
class ActionClause:
    text: str
    span: tuple[int, int]
    due: DueDate | None


class ActionDetector:
    def __init__(self, words: ActionWords) -> None:
        # English words ignore case: a sentence-initial "Sending…" or "Will…" is the same word
        self._verbs = re.compile(alternation(words.verbs, ignore_case_ascii=True))
        self._verb_patterns = tuple(re.compile(p) for p in words.verb_patterns)
        self._not_verbs = re.compile(alternation(words.not_verbs)) if words.not_verbs else None
        self._past = re.compile(alternation(words.past_markers))
        self._strong_past = re.compile(alternation(words.strong_past_markers)) if words.strong_past_markers else None
        self._not_past = re.compile(alternation(words.not_past)) if words.not_past else None
        self._future = re.compile(alternation(words.future_markers, ignore_case_ascii=True))
        self._first_person = re.compile(alternation(words.first_person))
        # first person as subject, not as object ("给我回复", "跟我们说")
        self._subject = re.compile(f"(?<![给跟和对向找问让叫请帮])(?:{alternation(words.first_person)})")
        self._request = re.compile(alternation(words.request_frames))
        self._speech = re.compile(alternation(words.speech_verbs)) if words.speech_verbs else None
        self._speech_end = re.compile(f"(?:{alternation(words.speech_verbs)})$") if words.speech_verbs else None
        self._third_party = re.compile(f"^(?:{alternation(words.third_party_subjects)})") \
            if words.third_party_subjects else None
        self._appointment_rx = re.compile(alternation(words.appointments, ignore_case_ascii=True)) \
            if words.appointments else None
        self._continuation = re.compile(f"^(?:{alternation(words.continuations)})") if words.continuations else None

    def detect(self, text: str, clauses: Sequence[tuple[int, int]], dates: Sequence[DueDate],
               today: date, parties: Sequence[tuple[int, int]] = ()) -> list[ActionClause]:
        """Action clauses in text order, each with its earliest date (None when undated).

        ``parties``: spans of named customer-side actors (departments, contacts); a clause opened
        by one is their plan ("采购中心下午开会"), like one opened by "他们"."""
        party_starts = {p[0] for p in parties}
        per_clause = [[d for d in dates if s <= d.span[0] < e] for s, e in clauses]
        is_action: list[bool] = []
        for i, (s, e) in enumerate(clauses):
            clause = text[s:e]
            # reported speech carries over to the next clause only after "…说，"; in unpunctuated
            # transcripts the speaker's words cannot be told from the rep's own plan, and the rep's
            # plan is the likelier reading ("黄护士长反馈…下周约采购办谈")
            inherited = i > 0 and self._speech_end is not None and bool(
                self._speech_end.search(text[clauses[i - 1][0]:clauses[i - 1][1]]))
            action = self._classify(clause, per_clause[i], s, today, inherited, s in party_starts)
            if (not action and i > 0 and is_action[i - 1] and self._continuation is not None
                    and self._continuation.search(clause) and (self._verb(clause) or "把" in clause)):
                action = True  # "…签合同，顺便把发票开了"
            if action and (_QUESTION_END.search(clause) or (e < len(text) and text[e] in "?？")
                           or _FORECAST.search(clause, 0, max(0, (self._verb(clause) or _NO_MATCH).start()))):
                action = False
            is_action.append(action)
        # WeChat shorthand puts the date apart ("下周三前 给报价", "明天 follow up 王主任"): a date-only
        # clause makes the verb clause right after it (else right before it) a commitment
        for i, (s, e) in enumerate(clauses):
            if not per_clause[i] or not self._date_only(text, s, e, per_clause[i]) \
                    or not any(d.due >= today and not d.past for d in per_clause[i]):
                continue
            if (i > 0 and is_action[i - 1]) or (i + 1 < len(clauses) and is_action[i + 1]):
                continue
            for j in (i + 1, i - 1):
                if 0 <= j < len(clauses) and not per_clause[j]:
                    sj, ej = clauses[j]
                    other = text[sj:ej]
                    if self._verb(other) and not self._is_past_report(other) and not (
                            self._speech and self._speech.search(other)) and not _QUESTION_END.search(other):
                        is_action[j] = True
                        break
        # a clause that is only a date joins the action before it, else the one after it
        for i, (s, e) in enumerate(clauses):
            if is_action[i] or not per_clause[i] or not self._date_only(text, s, e, per_clause[i]):
                continue
            ends_sentence = i + 1 < len(clauses) and _SENTENCE_END.search(text, e, clauses[i + 1][0]) is not None
            target = i - 1 if i > 0 and is_action[i - 1] else i + 1 if i + 1 < len(clauses) and is_action[i + 1] \
                and not ends_sentence else None  # "…cardiology today. Dr. Zhang wants…": today is not his date
            if target is not None:
                per_clause[target] = per_clause[target] + per_clause[i]
        out = []
        for i, (s, e) in enumerate(clauses):
            if not is_action[i]:
                continue
            own = per_clause[i]
            if not own and "提前" in text[s:e]:
                # "开标那天我提前半小时到": the step is on the day of the event named before
                own = next((per_clause[j] for j in range(i - 1, -1, -1) if per_clause[j]), [])
            elif not own and i > 0 and not is_action[i - 1] and not self._is_past_report(
                    text[clauses[i - 1][0]:clauses[i - 1][1]]):
                # "他说下周二上午有空，我去找他": the (future) time just named is when we act
                own = [d for d in per_clause[i - 1] if d.due > today]
            candidates = [d for d in own if not d.past] or own
            due = min(candidates, key=lambda d: (d.due, d.span[0])) if candidates else None
            out.append(ActionClause(self._rep_side(self._describe(text, s, e, own), text, s, parties), (s, e), due))
        return out

    def appointment(self, text: str, dates: Sequence[DueDate], names: Sequence[tuple[int, int]],
                    today: date) -> ActionClause | None:
        """A verbless note that is only a coming date, whom or where, and maybe a meeting word
        ("明天上午十点 设备科", "Tomorrow 9am at 省人民 w/ 刘处"): the rep's appointment, due that day.
        Anything else left over ("集采结果公布") makes it someone else's event, not ours."""
        coming = [d for d in dates if d.due >= today and not d.past]
        if not coming or not names:
            return None
        rest = list(text)
        for s, e in [d.span for d in dates] + list(names):
            for k in range(s, e):
                rest[k] = " "
        left = self._appointment_rx.sub(" ", "".join(rest)) if self._appointment_rx else "".join(rest)
        if _APPOINTMENT_FILLER.sub("", left):
            return None
        due = min(coming, key=lambda d: (d.due, d.span[0]))
        return ActionClause(self._describe(text, 0, len(text), dates), (0, len(text)), due)

    @staticmethod
    def choose(actions: Sequence[ActionClause]) -> ActionClause | None:
        """The action due first; undated actions only when none has a date."""
        dated = [a for a in actions if a.due is not None]
        if dated:
            return min(dated, key=lambda a: (a.due.due, a.span[0]))  # type: ignore[union-attr]
        return actions[0] if actions else None

    def _verb(self, clause: str) -> re.Match[str] | None:
        blocked = [m.span() for m in self._not_verbs.finditer(clause)] if self._not_verbs else []
        found = [m for m in self._verbs.finditer(clause) if not any(s <= m.start() < e for s, e in blocked)]
        for rx in self._verb_patterns:
            found.extend(rx.finditer(clause))
        return min(found, key=lambda m: m.start()) if found else None

    def _classify(self, clause: str, dates: Sequence[DueDate], offset: int, today: date, inherited: bool,
                  party_opened: bool = False) -> bool:
        """Is this clause an action of the rep?  ``inherited``: the clause before ended in "说";
        ``party_opened``: the clause starts with a named customer-side actor."""
        request = self._request.search(clause)
        speech = self._speech.search(clause) if self._speech else None
        if speech and self._first_person.search(clause, max(0, speech.start() - 2), speech.start()):
            speech = None  # "我说要回去请示" is ours
        verb = self._verb(clause)
        if verb is None:
            # "下周一前要提质疑": a future deadline plus an obligation is a commitment even when the
            # verb is not in the lexicon; someone else's words are not ("主任说月底前要定")
            if speech or inherited or party_opened or (
                    self._third_party is not None and self._third_party.search(clause)):
                return False
            # "我下周四前先出初稿", "下周四之前我给公司打个报告": the rep as subject with a deadline
            # commits even with a verb the lexicon lacks
            return any(d.due >= today and not d.past and 0 < d.span[1] - offset <= len(clause)
                       and clause[d.span[1] - offset - 1] in "前内止"
                       and (_MODAL_AFTER.match(clause, d.span[1] - offset)
                            or _OWN_BEFORE.search(clause, 0, d.span[0] - offset)
                            or _OWN_AFTER.match(clause, d.span[1] - offset)) for d in dates)
        if request:
            return True
        if inherited and not speech and not self._subject.search(clause, 0, verb.start()):
            return False  # still someone else's words ("王主任说，下周去北京开会")
        if (party_opened or (self._third_party is not None and self._third_party.search(clause))) \
                and not self._subject.search(clause, 0, verb.start()) and "把" not in clause[:verb.start()]:
            return False  # their plan ("他们的ICU要更新一批监护仪")
        if speech and speech.start() < verb.start() and not self._subject.search(clause, speech.end(), verb.start()):
            return False  # someone else's plan ("王主任说下周去北京开会")
        # a date reported in someone's words after our verb is theirs ("跟进了一下，院办说推迟到下个月")
        future = [d for d in dates
                  if d.due > today and not d.past and not self._reported(clause, verb.end(), d.span[0] - offset)]
        masked = self._not_past.sub(lambda m: "＿" * len(m.group()), clause) if self._not_past else clause
        if future and self._strong_past is not None:
            last_date = max(d.span[1] - offset for d in future)
            after = self._verb(masked[last_date:])
            if after is not None and self._strong_past.match(masked, last_date + after.end()):
                return False  # "周二那天去过了": the verb after the date is marked as done
        if future:
            return True
        past = bool(self._past.search(masked)) or any(d.past and not d.deadline for d in dates) \
            or bool(_EXPERIENTIAL.match(clause, verb.end()))
        if not past and any(d.past and d.deadline for d in dates):
            return True  # "11月3号前把资料发过去" written on the 20th: a commitment with a wrong date
        if past:
            return False
        # "今天" on its own dates a report as often as a plan ("今天第一次见", "今天去华山医院见了…"):
        # only a clock time, a deadline or a day period ("今晚", "今天下午三点前") makes it a commitment;
        # otherwise the usual signals below decide
        if any(d.due == today and (d.due_at is not None or d.deadline) for d in dates):
            return True
        return bool(self._future.search(clause) or self._subject.search(clause, 0, verb.start())
                    or "把" in clause[:verb.start()])

    def _is_past_report(self, clause: str) -> bool:
        masked = self._not_past.sub(lambda m: "＿" * len(m.group()), clause) if self._not_past else clause
        return bool(self._past.search(masked))

    def _reported(self, clause: str, start: int, end: int) -> bool:
        return self._speech is not None and end > start and self._speech.search(clause, start, end) is not None

    @staticmethod
    def _date_only(text: str, s: int, e: int, dates: Sequence[DueDate]) -> bool:
        rest = list(text[s:e])
        for d in dates:
            for k in range(max(d.span[0], s), min(d.span[1], e)):
                rest[k - s] = ""
        return bool(_DATE_ONLY_REST.match("".join(rest)))

    def _rep_side(self, described: str, text: str, s: int, parties: Sequence[tuple[int, int]]) -> str:
        """Written from the customer's side ("王主任让我把资料发给他") the action is still the rep's:
        keep what follows the request ("把资料发给王主任"), naming the requester instead of 他/她."""
        frame = None
        for frame in _REQUEST_TO_REP.finditer(described):
            pass
        if frame is None:
            # the clause was cut at its date: "张科长要求我们|下周一前把参数表交给她"
            before = text[max(0, s - 16):s]
            lead = None
            for lead in _REQUEST_TO_REP.finditer(before):
                pass
            if lead is None or lead.end() < len(before) - 1:
                return described
            described, frame = before[:lead.start()] + described, None
            cut = lead.start()
        elif frame.end() >= len(described):
            return described
        else:
            cut = frame.start()
        action = described[cut if frame is None else frame.end():]
        asker = [text[a:b] for a, b in parties if b <= s + len(text) and a < s + len(text)
                 and text[a:b] in described[:cut] and not text[a:b].endswith(("科", "办", "处", "室", "部", "中心"))]
        if asker:
            action = _GIVE_PRONOUN.sub(lambda m: m.group(1) + asker[-1], action)
        return action

    @staticmethod
    def _describe(text: str, s: int, e: int, dates: Sequence[DueDate]) -> str:
        """The clause without its date words and leading pronouns: "把参数对比表发给他"."""
        chars = list(text[s:e])
        for d in dates:
            for k in range(max(d.span[0], s), min(d.span[1], e)):
                chars[k - s] = ""
        described = _EMPTY_BRACKETS.sub("", "".join(chars))
        if described.isascii() or _LATIN_EDGE.search(described):
            described = " ".join(_DANGLING.sub("", described.strip()).split())
        described = _LEAD.sub("", described).strip(" ，,。")
        return described or text[s:e].strip()
