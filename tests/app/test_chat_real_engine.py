"""The Chat pane with the real engine and SmolLM2: regenerate, edit and resend, saved
conversations that survive a restart and a killed engine, export to Markdown."""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import until
from tui.app import VramdeckApp
from tui.chat.export import to_markdown
from tui.chat.store import ConversationStore
from tui.engine.client import EngineClient
from tui.engine.settings import LoadSettings, SamplingSettings
from tui.engine.status import Phase
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.screens.chat import ChatScreen
from tui.screens.conversations import ConversationsScreen
from tui.widgets.chat_message import AssistantMessage, UserMessage
from tui.widgets.prompt_input import PromptInput

pytestmark = pytest.mark.slow


def chat_app(demo_model, store: ConversationStore, max_tokens: int = 48) -> VramdeckApp:
    app = VramdeckApp(EngineClient(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path=str(demo_model), n_ctx=2048),
                      conversation_store=store, model_locations=[])
    app.sampling = SamplingSettings(max_tokens=max_tokens, temperature=0.8, seed=-1)
    return app


async def send(pilot, text: str) -> ChatScreen:
    screen = pilot.app.screen
    screen.query_one(PromptInput).load_text(text)
    await pilot.press("enter")
    return screen


async def reply_done(pilot, screen: ChatScreen, n_replies: int) -> None:
    await until(pilot, lambda: len(screen.query(AssistantMessage)) == n_replies
                and not screen.replying)


async def test_regenerate_replaces_the_last_reply(tmp_path, demo_model):
    store = ConversationStore(tmp_path)
    app = chat_app(demo_model, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Name a colour.")
        await reply_done(pilot, screen, 1)
        old = screen.conversation.turns[1]
        await pilot.press("ctrl+r")
        await until(pilot, lambda: len(screen.conversation.turns) == 2
                    and screen.conversation.turns[1] is not old
                    and screen.conversation.turns[1].stats is not None)
        await reply_done(pilot, screen, 1)
        turns = screen.conversation.turns
        assert [t.role for t in turns] == ["user", "assistant"]
        assert turns[1].content and not turns[1].partial
        saved = store.load(screen.conversation.id)
        assert [t.content for t in saved.turns] == [t.content for t in turns]


async def test_edit_and_resend_the_last_message(tmp_path, demo_model):
    store = ConversationStore(tmp_path)
    app = chat_app(demo_model, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "What is 2+2?")
        await reply_done(pilot, screen, 1)
        await pilot.press("ctrl+t")
        prompt = screen.query_one(PromptInput)
        assert prompt.text == "What is 2+2?"
        assert not screen.conversation.turns and not screen.query(UserMessage)
        prompt.load_text("What is 3+3?")
        await pilot.press("enter")
        await reply_done(pilot, screen, 1)
        assert [t.content for t in screen.conversation.turns][0] == "What is 3+3?"
        saved = store.load(screen.conversation.id)
        assert [t.role for t in saved.turns] == ["user", "assistant"]
        assert saved.turns[0].content == "What is 3+3?"


async def test_a_conversation_reopens_after_restarting_the_app(tmp_path, demo_model):
    store = ConversationStore(tmp_path)
    app = chat_app(demo_model, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Tell me about llamas.")
        await reply_done(pilot, screen, 1)
        first = [(t.role, t.content) for t in screen.conversation.turns]
        conv_id = screen.conversation.id

    again = chat_app(demo_model, store)
    async with again.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: again.engine_status.phase is Phase.READY)
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(again.screen, ConversationsScreen))
        await pilot.pause(0.1)
        await pilot.press("enter")
        screen = again.screen
        await until(pilot, lambda: isinstance(screen, ChatScreen) and screen.conversation.id == conv_id
                    and len(screen.query(AssistantMessage)) == 1)
        assert [(t.role, t.content) for t in screen.conversation.turns] == first
        assert screen.query_one(UserMessage).text == "Tell me about llamas."
        screen = await send(pilot, "And alpacas?")  # the reopened conversation goes on
        await reply_done(pilot, screen, 2)
    assert len(store.load(conv_id).turns) == 4


async def test_a_killed_engine_keeps_the_partial_reply_on_disk(tmp_path, demo_model):
    store = ConversationStore(tmp_path)
    app = chat_app(demo_model, store, max_tokens=2000)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Write a very long story about a dragon.")
        await until(pilot, lambda: len(screen.conversation.turns) == 2
                    and len(screen.conversation.turns[1].content) > 40)
        os.kill(app.engine.pid, signal.SIGKILL)
        await until(pilot, lambda: not screen.replying)
        reply = screen.conversation.turns[1]
        assert reply.partial and "killed by SIGKILL" in reply.note
        shown = reply.content
    saved = store.load(screen.conversation.id)
    assert saved.turns[1].content == shown
    assert saved.turns[1].partial


async def test_a_reply_cut_by_killing_the_app_comes_back_marked(tmp_path, demo_model):
    """No closing line in the file (the app died mid-reply): the reply is kept, marked."""
    store = ConversationStore(tmp_path)
    app = chat_app(demo_model, store, max_tokens=2000)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Write a very long story about a dragon.")
        conv_id = screen.conversation.id
        seen: list[str] = []

        def mid_reply() -> bool:
            """The file as it is while the reply streams (what a kill at this moment leaves)."""
            turns = screen.conversation.turns
            if len(turns) == 2 and len(turns[1].content) > 40:
                text = store.path(conv_id).read_text()
                if '"t": "done"' not in text:
                    seen.append(text)
                    return True
            return False

        await until(pilot, mid_reply)
        await pilot.press("escape")
        text = seen[0]
    cut = tmp_path / "cut"
    ConversationStore(cut).folder.mkdir()
    (cut / f"{conv_id}.jsonl").write_text(text)
    reopened = ConversationStore(cut).load(conv_id)
    assert reopened.turns[1].partial and reopened.turns[1].note == "interrupted"
    assert len(reopened.turns[1].content) > 40


async def test_export_gives_the_expected_markdown(tmp_path, demo_model):
    store = ConversationStore(tmp_path / "chats")
    app = chat_app(demo_model, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Say hi.")
        await reply_done(pilot, screen, 1)
        conv = screen.conversation
        await pilot.press("ctrl+o")
        await until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        await pilot.pause(0.1)
        await pilot.press("e")
        await pilot.pause(0.2)
        target = tmp_path / "out.md"
        from textual.widgets import Input
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, target.exists)
    text = target.read_text()
    reply = conv.turns[1]
    assert text == to_markdown(store.load(conv.id))
    assert text.startswith("# Say hi.\n")
    assert "## System\n\nYou are a helpful assistant.\n" in text
    assert f"## User\n\nSay hi.\n\n## Assistant\n\n{reply.content.strip()}\n" in text
    assert f"*{reply.stats.generated_tokens} tokens," in text


async def test_copy_a_message_and_save_its_code_block(tmp_path, demo_model):
    """Tab from the composer onto the reply; c copies it (OSC 52), w saves its code blocks."""
    from textual.widgets import Input

    store = ConversationStore(tmp_path / "chats")
    app = chat_app(demo_model, store)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "Show a hello world in Python.")
        await reply_done(pilot, screen, 1)
        reply = screen.query_one(AssistantMessage)
        reply.text = "Here:\n\n```python\nprint('hello')\n```\n"  # a known code block to save
        reply.focus()
        await pilot.press("c")
        assert app.clipboard == reply.text
        await pilot.press("w")
        await pilot.pause(0.2)
        target = tmp_path / "hello.py"
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, target.exists)
    assert target.read_text() == "print('hello')\n"


async def test_esc_returns_control_from_a_chat_template_that_never_ends(tmp_path, monkeypatch):
    """Issue 25: a GGUF whose template runs three nested range(99999) loops sat at 100% CPU,
    Esc did nothing, and new messages were refused. Esc now ends the reply before its first
    token, and the next message is taken."""
    from tests.engine.test_hostile_template import ENDLESS
    from tui.models.synthetic import write_random_llama

    monkeypatch.setenv("VRAMDECK_TEMPLATE_LIMIT_S", "600")  # only Esc ends it here
    model = write_random_llama(tmp_path / "endless-template.gguf", chat_template=ENDLESS)
    app = chat_app(model, ConversationStore(tmp_path / "chats"), max_tokens=4)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        screen = await send(pilot, "hello")
        await until(pilot, lambda: screen.replying)
        await pilot.pause(1.0)
        assert screen.replying, "the template is still rendering"
        await pilot.press("escape")
        await until(pilot, lambda: not screen.replying, timeout=30)
        await send(pilot, "again")
        await until(pilot, lambda: len(screen.query(UserMessage)) == 2)
        await pilot.press("escape")
        await until(pilot, lambda: not screen.replying, timeout=30)
