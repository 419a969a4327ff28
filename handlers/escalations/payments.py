"""Payment plans: terms read from notes (proposed, confirmed in one tap), ``#回款 … 已到账`` and the finance import.

Nothing a note says about payment terms is stored as fact before the rep taps 确认: the
proposal lives in the note's fields (what the note said) and the card's button carries the
note id. The finance import is all-or-nothing per file and idempotent on invoice numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.escalations.service import installment_due, receive, watch_installment
from nlp.amounts import find_amount
from storage.audit import audit
from storage.models import Account, Installment, Note, Opportunity, PaymentPlan, Person

if TYPE_CHECKING:
    from bot.context import AppContext

PROPOSAL = "payment_proposal"
_CLAUSE = re.compile(r"[，,。；;\n]")
_MONEY_WORD = re.compile(r"(首付|预付|定金|订金|尾款|余款|质保金|第[一二三四五六七八九十\d]+笔|[一二三四五六七八九十\d]+期)款?")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]|百分之([一二三四五六七八九十]+)")
_TRIGGER = re.compile(r"(验收|到货|发货|签约|签合同|安装)(?:合格|完成|完)?后(?:(\d+)\s*(?:个)?(?:天|日))?")
_TRIGGERS = {"验收": "acceptance", "到货": "delivery", "发货": "delivery", "安装": "acceptance", "签约": "contract", "签合同": "contract"}
TRIGGER_LABELS = {"acceptance": "验收后", "delivery": "到货后", "contract": "签约后"}
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


def _cn_percent(text: str) -> float | None:
    if text == "十":
        return 10.0
    if len(text) == 2 and text[0] == "十":
        return 10.0 + _CN_DIGITS.get(text[1], 0)
    if len(text) >= 2 and text[1] == "十":
        return _CN_DIGITS.get(text[0], 0) * 10.0 + (_CN_DIGITS.get(text[2], 0) if len(text) > 2 else 0)
    return float(_CN_DIGITS[text]) if text in _CN_DIGITS else None


def parse_terms(app: AppContext, text: str, now: datetime) -> list[dict[str, Any]]:
    """Installments a note describes: [{label, amount?, percent?, due?, trigger?, days}] (empty: none)."""
    from handlers.common.dates import parse_answer_date

    items: list[dict[str, Any]] = []
    for clause in _CLAUSE.split(text):
        word = _MONEY_WORD.search(clause)
        if word is None and items and re.search(r"付|款", clause) and not ({"due", "trigger"} & items[-1].keys()):
            parsed = parse_answer_date(app, clause, now)  # "首付款30%，3月20号前付": the date belongs to the item before
            if parsed is not None:
                items[-1]["due"] = parsed.due.isoformat()
            continue
        if word is None or not re.search(r"款|付|支付", clause):
            continue
        item: dict[str, Any] = {"label": word.group(1), "days": 0}
        pct = _PERCENT.search(clause)
        if pct:
            item["percent"] = float(pct.group(1)) if pct.group(1) else _cn_percent(pct.group(2))
        money = find_amount(clause)
        if money and not pct:
            item["amount"] = money[0]
        trig = _TRIGGER.search(clause)
        if trig:
            item["trigger"] = _TRIGGERS[trig.group(1)]
            item["days"] = int(trig.group(2) or 0)
        else:
            parsed = parse_answer_date(app, clause, now)
            if parsed is not None:
                item["due"] = parsed.due.isoformat()
        if len(item) > 2:
            items.append(item)
    # "余款/尾款" without a share: the rest of 100%
    shares = [i.get("percent") for i in items if i.get("percent") is not None]
    for item in items:
        if item["label"] in ("余款", "尾款") and "percent" not in item and "amount" not in item and shares:
            item["percent"] = max(0.0, 100.0 - sum(shares))
    return items


def describe(item: dict[str, Any]) -> str:
    share = f"{item['percent']:g}%" if item.get("percent") is not None else ""
    if item.get("amount"):
        from handlers.common.format import money

        share = money(int(item["amount"]))
    if item.get("due"):
        day = date.fromisoformat(item["due"])
        when = f"{day.month}月{day.day}日前"
    elif item.get("trigger"):
        when = TRIGGER_LABELS.get(item["trigger"], item["trigger"]) + (f"{item['days']}天" if item.get("days") else "")
    else:
        when = "日期待定"
    return f"{item['label']} {share} · {when}".replace("  ", " ")


async def propose_from_note(app: AppContext, session: AsyncSession, opp: Opportunity, note: Note, *, now: datetime) -> None:
    """A note mentioning payment terms → a proposal card for the rep (nothing stored as fact yet)."""
    items = parse_terms(app, note.raw_text or note.transcript or "", now)
    if not items:
        return
    note.fields = {**(note.fields or {}), PROPOSAL: items}
    from bot.messages import Reply
    from bot.pipeline.notify import notify
    from handlers.escalations.cards import proposal_card

    author = await session.get(Person, note.author_id)
    account = await session.get(Account, opp.account_id) if opp.account_id else None
    if author is not None:
        card = proposal_card(note.id, account.name if account else "", [describe(i) for i in items])
        await notify(app, session, author, Reply(card=card, tag="payments.proposal"), now=now)


async def confirm_proposal(app: AppContext, session: AsyncSession, note: Note, person: Person, *, now: datetime) -> PaymentPlan | None:
    """The rep tapped 确认: the proposed installments become the deal's payment plan."""
    items = (note.fields or {}).get(PROPOSAL) or []
    if not items or note.opportunity_id is None or (note.fields or {}).get("payment_plan_id"):
        return None
    opp = await session.get(Opportunity, note.opportunity_id)
    if opp is None:
        return None
    plan = PaymentPlan(opportunity_id=opp.id, account_id=opp.account_id, owner_id=opp.owner_id,
                       total_amount=opp.amount, source="note", note_id=note.id, created_at=now)
    session.add(plan)
    await session.flush()
    for seq, item in enumerate(items, start=1):
        inst = Installment(plan_id=plan.id, seq=seq, label=item["label"], amount=item.get("amount"),
                           percent=item.get("percent"), due_date=date.fromisoformat(item["due"]) if item.get("due") else None,
                           trigger=item.get("trigger", ""), trigger_days=int(item.get("days") or 0),
                           received_amount=0, status="open", created_at=now, updated_at=now)
        session.add(inst)
        await session.flush()
        await watch_installment(app, session, inst, now=now, actor_id=person.id)
    note.fields = {**(note.fields or {}), "payment_plan_id": plan.id}
    await audit(session, actor_id=person.id, entity="payment_plan", entity_id=plan.id, field_name="created",
                old=None, new=f"note {note.id}", note_id=note.id, now=now)
    return plan


async def open_installments(session: AsyncSession, account_id: int, owner_ids: Iterable[int] | None) -> list[Installment]:
    stmt = (select(Installment).join(PaymentPlan, PaymentPlan.id == Installment.plan_id)
            .where(PaymentPlan.account_id == account_id, Installment.status.in_(("open", "partial"))))
    if owner_ids is not None:
        stmt = stmt.where(PaymentPlan.owner_id.in_(list(owner_ids)))
    rows = list((await session.scalars(stmt)).all())
    return sorted(rows, key=lambda i: (i.due_date is None, i.due_date or date.max, i.plan_id, i.seq))


async def record_receipt(app: AppContext, session: AsyncSession, installments: Sequence[Installment], amount: int,
                         *, actor_id: int, now: datetime) -> list[tuple[Installment, int]]:
    """Spread ``amount`` over the open installments in due order; returns what each got."""
    applied: list[tuple[Installment, int]] = []
    left = amount
    for inst in installments:
        if left <= 0:
            break
        plan = await session.get(PaymentPlan, inst.plan_id)
        due = installment_due(inst, plan) if plan else None
        outstanding = (due - inst.received_amount) if due is not None else left
        part = left if inst is installments[-1] else min(left, max(outstanding, 0))
        if part <= 0:
            continue
        await receive(app, session, inst, part, source="chat", actor_id=actor_id, reference=None, now=now)
        applied.append((inst, part))
        left -= part
    return applied


# ---- the finance import -------------------------------------------------------------------

HEADERS = {
    "invoice_no": ("invoice_no", "发票号", "发票号码"),
    "hospital": ("hospital", "医院", "客户"),
    "amount": ("amount", "金额", "应收金额"),
    "due_date": ("due_date", "到期日", "应收日期"),
    "received": ("received", "已收金额", "已收"),
    "owner": ("owner", "销售", "负责人"),
    "contract_no": ("contract_no", "合同号"),
}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def read_table(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every data row of a CSV or XLSX file, keyed by the canonical column names."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True, data_only=True).active
        raw_rows = [["" if v is None else (v.isoformat()[:10] if isinstance(v, (date, datetime)) else str(v)) for v in row]
                    for row in sheet.iter_rows(values_only=True)]
    else:
        raw_rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    if not raw_rows:
        return []
    names: list[str | None] = []
    for head in raw_rows[0]:
        head = head.strip()
        names.append(next((key for key, options in HEADERS.items() if head in options), None))
    out = []
    for number, row in enumerate(raw_rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        out.append((number, {name: cell.strip() for name, cell in zip(names, row) if name}))
    return out


def _money(text: str) -> int | None:
    text = text.replace(",", "").strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return int(round(float(text)))
    found = find_amount(text)
    return found[0] if found else None


async def import_rows(app: AppContext, session: AsyncSession, rows: Sequence[tuple[int, dict[str, str]]],
                      *, now: datetime) -> ImportResult:
    """Apply finance's rows; any row error → nothing is written (the caller rolls back on ``errors``)."""
    result = ImportResult()
    canonical = app.services.lexicon.canonical_account
    parsed: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for line, row in rows:
        problems = []
        invoice = row.get("invoice_no", "")
        if not invoice:
            problems.append("发票号为空")
        elif invoice in seen:
            problems.append(f"发票号 {invoice} 重复")
        seen.add(invoice)
        amount = _money(row.get("amount", ""))
        if amount is None or amount <= 0:
            problems.append(f"金额无效：{row.get('amount', '')!r}")
        try:
            due = date.fromisoformat(row.get("due_date", "").replace("/", "-")[:10])
        except ValueError:
            problems.append(f"到期日无效：{row.get('due_date', '')!r}（应为 YYYY-MM-DD）")
            due = None
        received = _money(row["received"]) if row.get("received") else 0
        if received is None or received < 0:
            problems.append(f"已收金额无效：{row.get('received')!r}")
        hospital = canonical(row.get("hospital", "")) if row.get("hospital") else ""
        account = await session.scalar(select(Account).where(Account.name == hospital)) if hospital else None
        if account is None:
            problems.append(f"医院不存在：{row.get('hospital', '')!r}")
        owner = None
        if row.get("owner"):
            owner = await session.scalar(select(Person).where(Person.key == row["owner"]))
            if owner is None:
                owner = await session.scalar(select(Person).where(Person.name == row["owner"]))
            if owner is None:
                problems.append(f"销售不存在：{row['owner']!r}")
        if problems:
            result.errors.append(f"第{line}行：" + "；".join(problems))
            continue
        parsed.append((line, {"invoice": invoice, "amount": amount, "due": due, "received": received or 0,
                              "account": account, "owner": owner, "contract": row.get("contract_no", "")}))
    if result.errors:
        return result
    for _line, item in parsed:
        inst = await session.scalar(select(Installment).where(Installment.invoice_no == item["invoice"]))
        if inst is None:
            account: Account = item["account"]
            owner_id = item["owner"].id if item["owner"] else None
            opp = await session.scalar(select(Opportunity).where(Opportunity.account_id == account.id)
                                       .order_by(Opportunity.status != "open", Opportunity.id.desc()).limit(1))
            if owner_id is None and opp is not None:
                owner_id = opp.owner_id
            plan = PaymentPlan(opportunity_id=opp.id if opp else None, account_id=account.id, owner_id=owner_id,
                               contract_no=item["contract"], total_amount=item["amount"], source="import", created_at=now)
            session.add(plan)
            await session.flush()
            inst = Installment(plan_id=plan.id, seq=1, label="发票", amount=item["amount"], due_date=item["due"],
                               invoice_no=item["invoice"], received_amount=0, status="open", created_at=now, updated_at=now)
            session.add(inst)
            await session.flush()
            await audit(session, actor_id=None, entity="installment", entity_id=inst.id, field_name="imported",
                        old=None, new=item["invoice"], note_id=None, now=now)
            result.created += 1
            changed = True
        else:
            changed = False
            if inst.due_date != item["due"] or inst.amount != item["amount"]:
                await audit(session, actor_id=None, entity="installment", entity_id=inst.id, field_name="due_date",
                            old=inst.due_date, new=item["due"], note_id=None, now=now)
                inst.due_date, inst.amount, changed = item["due"], item["amount"], True
        more = item["received"] - inst.received_amount
        if more > 0:
            await receive(app, session, inst, more, source="import", actor_id=None,
                          reference=f"{item['invoice']}:{item['received']}", now=now)
            changed = True
        else:
            await watch_installment(app, session, inst, now=now)
        if changed and inst.created_at != now:
            result.updated += 1
        elif not changed:
            result.unchanged += 1
    return result
