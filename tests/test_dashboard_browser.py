"""The dashboard in a real headless Chromium (the system package), driven over the DevTools protocol.

No browser download and no extra package: Chromium is started with ``--remote-debugging-port``
and spoken to over aiohttp websockets. Screenshots go to ``tests/artifacts/dashboard/``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from handlers.reports.links import issue_link
from storage.db import transaction
from storage.models import Person
from tests.reports_seed import seed
from tests.test_reports import NOW, SECRET

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "dashboard"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install chromium)")


class Page:
    """One tab: send CDP commands, collect console errors and exceptions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []
        self.loaded = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            method = data.get("method")
            if method == "Page.loadEventFired":
                self.loaded.set()
            elif method == "Runtime.exceptionThrown":
                self.errors.append(str(data["params"]["exceptionDetails"].get("text")))
            elif method == "Runtime.consoleAPICalled" and data["params"]["type"] in ("error", "assert"):
                self.errors.append(str(data["params"]["args"]))
            elif method == "Log.entryAdded" and data["params"]["entry"]["level"] == "error":
                self.errors.append(data["params"]["entry"]["text"] + " " + data["params"]["entry"].get("url", ""))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[n] = fut
        await self.ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        result = await asyncio.wait_for(fut, 20)
        if "error" in result:
            raise AssertionError(f"{method}: {result['error']}")
        return result.get("result", {})

    async def goto(self, url: str) -> None:
        self.loaded.clear()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(self.loaded.wait(), 20)

    async def js(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def viewport(self, width: int, height: int, mobile: bool) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    async def screenshot(self, name: str) -> Path:
        data = (await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False))["data"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data))
        return path


async def start_chromium(profile: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],  # type: ignore[list-item]
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        line = (await loop.run_in_executor(None, proc.stderr.readline)).decode(errors="replace")
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("Chromium did not start")


async def link(app: Any, key: str) -> str:
    async with transaction(app.sessions) as s:
        person = await s.scalar(select(Person).where(Person.key == key))
        assert person is not None
        return (await issue_link(s, SECRET, person.id, app.clock.now(), 10)).token


async def test_dashboard_in_headless_chromium(make_runtime: Any, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the browser")
    runtime = await make_runtime({"dashboard": {"secret": SECRET}}, clock=FakeClock(NOW), http=True)
    seeded = await seed(runtime.app, NOW)
    base = f"http://127.0.0.1:{runtime.port}"
    profile = tempfile.mkdtemp(prefix="genjin-chromium-")
    proc, browser_ws = await start_chromium(profile)
    try:
        port = browser_ws.split(":")[2].split("/")[0]
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as r:
                target = await r.json()
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                    await page.send(domain)

                # a tampered link and an expired one are refused
                token = await link(runtime.app, "wang_jl")
                await page.goto(f"{base}/dash/login?t={token[:-3]}abc")
                assert "无法打开看板" in await page.js("document.body.innerText")
                await page.screenshot("refused-tampered.png")
                expired = await link(runtime.app, "wang_jl")
                runtime.app.clock.advance(__import__("datetime").timedelta(minutes=11))  # type: ignore[attr-defined]
                await page.goto(f"{base}/dash/login?t={expired}")
                assert "过期" in await page.js("document.body.innerText")
                page.errors.clear()

                await page.goto(f"{base}/dash/login?t={await link(runtime.app, 'wang_jl')}")
                own = seeded["opps"]["zhangwei"][1]
                for width, height, mobile, tag in ((375, 812, True, "phone"), (1280, 800, False, "desktop")):
                    await page.viewport(width, height, mobile)
                    for path, name in (("/dash/", "overview"), ("/dash/deals", "deals"), (f"/dash/deals/{own}", "deal"),
                                       ("/dash/reps", "reps")):
                        await page.goto(base + path)
                        assert page.errors == [], (path, page.errors)
                        text = await page.js("document.body.innerText")
                        assert "跟进看板" in text and "无法打开" not in text, path
                        # nothing wider than the screen (tables scroll inside their box)
                        assert await page.js("document.documentElement.scrollWidth") <= width + 1, (path, tag)
                        if name in ("overview", "reps"):
                            shown = await page.js(
                                "(() => { const i = document.querySelector('img.chart'); if (!i) return 0;"
                                " const r = i.getBoundingClientRect(); return i.complete && i.naturalWidth > 0 ? r.width * r.height : 0 })()")
                            assert shown > 10_000, (path, tag)
                        await page.screenshot(f"{name}-{tag}.png")
                # another team's deal, with a valid session: refused
                north = seeded["opps"]["liuyang"][0]
                await page.goto(f"{base}/dash/deals/{north}")
                assert "无权查看" in await page.js("document.body.innerText")
                await page.screenshot("refused-other-team.png")
                page.reader.cancel()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
