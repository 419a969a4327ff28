"""The read-only web dashboard under ``/dash/``: server-rendered HTML, Chinese first, phone width first.

Identity: ``/dash/login?t=…`` redeems a signed one-use link from ``#看板`` (or ``genjin
dashboard link``) into a signed session cookie; every page builds the person's
:class:`storage.scope.Scope` and reads through :mod:`handlers.reports.queries`, so another
team's deal id typed into the URL is a 404, not a page. Charts are PNGs made on the server
(no CDN, no JavaScript). The composition root mounts this (``bot.app``); the runtime never
imports it.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.context import AppContext
from handlers.common.format import money, stage_label
from handlers.reports import charts
from handlers.reports import health as hp
from handlers.reports import queries as q
from handlers.reports.links import LinkError, redeem_link, session_person, session_value
from storage.models import Account, Person
from storage.scope import Scope, scope_for

COOKIE = "genjin_dash"
E = html.escape

CSS = """
*{box-sizing:border-box}body{margin:0;font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
color:#1d2433;background:#f4f6fa;font-size:15px;line-height:1.5}
header{background:#2f6fde;color:#fff;padding:10px 14px;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}
header b{font-size:17px;margin-right:auto}header a{color:#fff;text-decoration:none;opacity:.9}
main{max-width:1100px;margin:0 auto;padding:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.box{background:#fff;border-radius:8px;padding:12px;margin-bottom:12px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.k{color:#667;font-size:13px}.v{font-size:20px;font-weight:600}
table{width:100%;border-collapse:collapse;font-size:14px}th,td{padding:6px 4px;border-bottom:1px solid #eef;text-align:left}
.scroll{overflow-x:auto}img.chart{max-width:100%;height:auto;display:block}
.good{color:#16803c}.watch{color:#b26a00}.risk{color:#c62828}
form{display:flex;flex-wrap:wrap;gap:8px}select,button{font-size:15px;padding:4px 6px}
h1{font-size:19px;margin:4px 0 10px}h2{font-size:16px;margin:0 0 8px}
"""


def _page(title: str, person: Person, body: str, status: int = 200) -> web.Response:
    nav = ('<a href="/dash/">总览</a><a href="/dash/deals">商机</a><a href="/dash/reps">人员</a>'
           f'<span>{E(person.name)}</span>')
    doc = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
           f'<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">'
           f'<title>{E(title)} · 跟进看板</title><style>{CSS}</style></head>'
           f'<body><header><b>跟进看板</b>{nav}</header><main><h1>{E(title)}</h1>{body}</main></body></html>')
    return web.Response(text=doc, content_type="text/html", charset="utf-8", status=status,
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "SAMEORIGIN",
                                 "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'"})


def _refuse(text: str, status: int) -> web.Response:
    doc = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" '
           f'content="width=device-width,initial-scale=1"><title>无法打开</title><style>{CSS}</style></head>'
           f'<body><main><div class="box"><h1>无法打开看板</h1><p>{E(text)}</p></div></main></body></html>')
    return web.Response(text=doc, content_type="text/html", charset="utf-8", status=status, headers={"Cache-Control": "no-store"})


def _img(png: bytes, alt: str) -> str:
    return f'<img class="chart" alt="{E(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _day(app: AppContext, at: datetime) -> str:
    local = at.astimezone(app.config.tz)
    return f"{local.month}月{local.day}日"


class Dashboard:
    def __init__(self, app: AppContext) -> None:
        self.app = app

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/dash/login", self.login),
            web.get("/dash/", self.overview),
            web.get("/dash/deals", self.deal_list),
            web.get("/dash/deals/{id}", self.deal),
            web.get("/dash/reps", self.reps),
        ]

    # ---- identity -----------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        cfg = self.app.config.dashboard
        now = self.app.clock.now()
        try:
            async with self.app.sessions() as session:
                async with session.begin():
                    person_id = await redeem_link(session, cfg.secret, request.query.get("t", ""), now)
        except LinkError as exc:
            return _refuse(str(exc), 403)
        response = web.HTTPFound("/dash/")
        response.set_cookie(COOKIE, session_value(cfg.secret, person_id, now, cfg.session_hours), httponly=True,
                            samesite="Lax", path="/dash", max_age=int(cfg.session_hours * 3600),
                            secure=cfg.base_url.startswith("https://"))
        return response

    async def _who(self, request: web.Request, session: Any) -> tuple[Person, Scope] | web.Response:
        cfg = self.app.config.dashboard
        try:
            person_id = session_person(cfg.secret, request.cookies.get(COOKIE, ""), self.app.clock.now())
        except LinkError:
            return _refuse("请在聊天里发 #看板 获取登录链接。", 401)
        person = await session.get(Person, person_id)
        if person is None or not person.active:
            return _refuse("账号不可用。", 403)
        return person, await scope_for(session, person)

    # ---- pages ----------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        app, now = self.app, self.app.clock.now()
        async with app.sessions() as session:
            who = await self._who(request, session)
            if isinstance(who, web.Response):
                return who
            person, scope = who
            since = q.week_start(app, now)
            today = now.astimezone(app.config.tz).date()
            funnel = await q.funnel(app, session, scope, now)
            escalations = await q.open_escalations(session, scope)
            receivables = await q.overdue_receivables(session, scope, today, app.config.tz)
            leads = await q.lead_speed(session, scope, since, now, now)
        chart = charts.funnel_png("销售漏斗", [r.label for r in funnel], [r.count for r in funnel],
                                  [f"{r.change:+d}" for r in funnel])
        tiles = [
            ("进行中商机", f"{sum(r.count for r in funnel)}单"),
            ("管道金额", money(sum(r.amount for r in funnel)) or "0"),
            ("未结预警", f"{sum(escalations.values())}条"),
            ("逾期回款", f"{len(receivables)}笔 {money(sum(r.amount for r in receivables))}"),
            ("本周线索认领", f"{leads.claimed}/{leads.offered}"),
            ("15分钟内认领", "—" if leads.within_sla is None else f"{round(leads.within_sla * 100)}%"),
        ]
        rows = "".join(
            f"<tr><td>{E(r.label)}</td><td>{r.count}</td><td>{E(money(r.amount) or '0')}</td><td>{r.change:+d}</td>"
            f"<td>{'—' if r.conversion is None else f'{round(r.conversion * 100)}%'}</td></tr>" for r in funnel)
        buckets = "".join(f"<tr><td>{E(label)}</td><td>{n}</td><td>{E(money(a) or '0')}</td></tr>" for label, n, a in q.bucketed(receivables))
        body = (
            '<div class="grid">' + "".join(f'<div class="box"><div class="k">{E(k)}</div><div class="v">{E(v)}</div></div>' for k, v in tiles) + "</div>"
            + f'<div class="box"><h2>漏斗</h2>{_img(chart, "销售漏斗图")}</div>'
            + '<div class="box scroll"><table><tr><th>阶段</th><th>单数</th><th>金额</th><th>较上周</th><th>转化</th></tr>' + rows + "</table></div>"
            + '<div class="box scroll"><h2>逾期回款</h2><table><tr><th>逾期</th><th>笔数</th><th>金额</th></tr>' + buckets + "</table></div>"
            + f'<div class="box"><h2>线索时效</h2>分配 {leads.offered} · 认领 {leads.claimed} · 中位 '
            + ("—" if leads.median_minutes is None else f"{leads.median_minutes:.0f} 分钟") + f" · 超时 {leads.breaches}</div>"
        )
        return _page("总览", person, body)

    async def deal_list(self, request: web.Request) -> web.Response:
        app = self.app
        stage = request.query.get("stage") or None
        order = request.query.get("order", "amount")
        status = request.query.get("status", "open")
        async with app.sessions() as session:
            who = await self._who(request, session)
            if isinstance(who, web.Response):
                return who
            person, scope = who
            lines = await q.deals(app, session, scope, status=status if status in ("open", "won", "lost") else "open",
                                  stage=stage, order=order, limit=100)
        options = "".join(f'<option value="{E(c)}"{" selected" if c == stage else ""}>{E(stage_label(app, c))}</option>'
                          for c in q.stage_codes(app))
        orders = "".join(f'<option value="{k}"{" selected" if k == order else ""}>{v}</option>'
                         for k, v in (("amount", "金额"), ("idle", "最久未跟进"), ("recent", "最近跟进")))
        form = (f'<form class="box" method="get"><select name="stage"><option value="">全部阶段</option>{options}</select>'
                f'<select name="order">{orders}</select><button>筛选</button></form>')
        rows = "".join(
            f'<tr><td><a href="/dash/deals/{d.opp.id}">#{d.opp.id} {E(d.account)}</a></td><td>{E(d.stage)}</td>'
            f"<td>{E(money(d.opp.amount) or '—')}</td><td>{E(d.owner)}</td><td>{_day(app, d.opp.last_activity_at)}</td></tr>"
            for d in lines)
        body = form + '<div class="box scroll"><table><tr><th>商机</th><th>阶段</th><th>金额</th><th>负责人</th><th>最近跟进</th></tr>' + rows + "</table></div>"
        return _page("商机列表", person, body)

    async def deal(self, request: web.Request) -> web.Response:
        app, now = self.app, self.app.clock.now()
        try:
            opp_id = int(request.match_info["id"])
        except ValueError:
            return _refuse("没有这个商机。", 404)
        async with app.sessions() as session:
            who = await self._who(request, session)
            if isinstance(who, web.Response):
                return who
            person, scope = who
            opp = await q.visible_opportunity(session, scope, opp_id)
            if opp is None:  # missing and not-yours look the same
                return _refuse("没有这个商机，或您无权查看。", 404)
            health = (await q.deal_health(app, session, [opp], now))[opp.id]
            before = await hp.previous_scores(session, "opportunity", [opp.id], now.astimezone(app.config.tz).date() - timedelta(days=7))
            notes = await q.deal_notes(session, scope, opp)
            tasks = await q.deal_tasks(session, scope, opp)
            trail = await q.audit_trail(session, scope, opportunity_ids=[opp.id], limit=40)
            found = await session.get(Account, opp.account_id) if opp.account_id is not None else None
            account = found.name if found is not None else "（未定医院）"
        change = f"（较上周 {health.score - before[opp.id]:+d}）" if opp.id in before else ""
        pen = "".join(f"<li><b>{E(p.code)} −{p.points}</b>：{E(p.text)}</li>" for p in health.penalties) or "<li>没有扣分项</li>"
        note_rows = "".join(f"<li>{_day(app, n.created_at)} {E(name)}：{E((n.raw_text or n.transcript)[:200])}</li>" for n, name in notes) or "<li>暂无</li>"
        task_rows = "".join(f"<li>{'☑' if t.status != 'open' else '☐'} {E(str(t.due_date or '未定日期'))} {E(t.text)}</li>" for t in tasks) or "<li>暂无</li>"
        trail_rows = "".join(
            f"<tr><td>{line.at.astimezone(app.config.tz):%m-%d %H:%M}</td><td>{E(line.actor)}</td><td>{'任务' if line.entity == 'task' else '商机'}#{line.entity_id}</td>"
            f"<td>{E(line.field)}</td><td>{E(str(line.old or ''))} → {E(str(line.new or ''))}</td></tr>" for line in trail)
        body = (
            f'<div class="grid"><div class="box"><div class="k">阶段</div><div class="v">{E(stage_label(app, opp.stage) or "未定")}</div></div>'
            f'<div class="box"><div class="k">金额</div><div class="v">{E(money(opp.amount) or "—")}</div></div>'
            f'<div class="box"><div class="k">健康度</div><div class="v {health.band}">{health.score} {hp.BAND_LABEL[health.band]}</div>{E(change)}</div></div>'
            f'<div class="box"><h2>扣分原因</h2><ul>{pen}</ul></div>'
            f'<div class="box"><h2>待办</h2><ul>{task_rows}</ul></div>'
            f'<div class="box"><h2>跟进记录</h2><ul>{note_rows}</ul></div>'
            f'<div class="box scroll"><h2>修改记录</h2><table><tr><th>时间</th><th>谁</th><th>对象</th><th>字段</th><th>变化</th></tr>{trail_rows}</table></div>'
        )
        return _page(f"#{opp.id} {account}", person, body)

    async def reps(self, request: web.Request) -> web.Response:
        app, now = self.app, self.app.clock.now()
        async with app.sessions() as session:
            who = await self._who(request, session)
            if isinstance(who, web.Response):
                return who
            person, scope = who
            table = await q.rep_table(app, session, scope, q.week_start(app, now), now)
        chart = charts.bars_png("本周跟进条数", [r.person.name for r in table], [r.notes for r in table]) if table else b""
        rows = "".join(
            f"<tr><td>{E(r.person.name)}</td><td>{r.notes}</td><td>{r.open_deals}</td><td>{E(money(r.pipeline) or '0')}</td>"
            f"<td>{r.leads_claimed}/{r.leads_offered}</td><td>{r.overdue_tasks}</td></tr>" for r in table)
        body = ((f'<div class="box">{_img(chart, "本周跟进条数")}</div>' if chart else "")
                + '<div class="box scroll"><table><tr><th>姓名</th><th>本周跟进</th><th>进行中</th><th>金额</th><th>线索认领</th><th>逾期待办</th></tr>'
                + rows + "</table></div>")
        return _page("人员", person, body)


def routes(app: AppContext) -> list[web.RouteDef]:
    """The ``/dash/`` pages (the reports feature brings them; off while ``[dashboard] secret`` is empty)."""
    return Dashboard(app).routes() if app.config.dashboard.secret else []
