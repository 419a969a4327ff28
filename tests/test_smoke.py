from tests.harness import Harness


async def test_text_gets_an_answer(harness: Harness) -> None:
    replies = await harness.say("zhangwei", "你好")
    assert replies and all(r for r in replies)
