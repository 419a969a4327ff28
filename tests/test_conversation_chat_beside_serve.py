"""Issue 15, item 10: `genjin chat` beside a running `genjin serve` on the same database.

Any node may process the chat's message, but only the chat process — which holds the
conversation — delivers the reply; a serve node leaves those outbox rows alone.
"""

from __future__ import annotations

import io

from bot.channels.local import LocalChannel
from bot.chat import parse_line, run_chat
from bot.messages import Inbound
from bot.pipeline import inbox
from tests.harness import Harness


async def test_the_chat_process_gets_its_reply_even_when_serve_processes_it(make_runtime) -> None:  # type: ignore[no-untyped-def]
    serve = Harness(await make_runtime())
    chat = Harness(await make_runtime(org=None))  # a second process on the same database
    channel = chat.app.channels["local"]
    assert isinstance(channel, LocalChannel)
    channel.hold("s1")
    msg = parse_line("zhangwei", "你好", "s1")
    assert isinstance(msg, Inbound) and msg.conversation.endswith("s1")
    await inbox.accept(chat.app, msg)
    assert await serve.runtime.work_once() == 1  # serve processed it …
    assert await serve.runtime.deliver_once() == 0  # … but does not deliver what chat waits for
    assert serve.delivered == []
    assert await chat.runtime.deliver_once() == 1
    assert [d.recipient for d in chat.delivered] == ["zhangwei"] and "你好" in chat.delivered[0].text
    # a message nobody holds (HTTP /local/messages, pushes) is delivered by any node
    await inbox.accept(serve.app, serve.message("lina", "你好"))
    await serve.settle()
    assert [d.recipient for d in serve.delivered] == ["lina"]


async def test_run_chat_holds_its_conversation(make_runtime) -> None:  # type: ignore[no-untyped-def]
    runtime = await make_runtime(workers=True)
    out = io.StringIO()
    assert await run_chat(runtime.app, "zhangwei", stdin=io.StringIO("嗯\n"), out=out) == 0
    channel = runtime.app.channels["local"]
    assert isinstance(channel, LocalChannel) and channel.holder
    assert "好的 👌" in out.getvalue()
