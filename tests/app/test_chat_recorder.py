"""The chat's recorder: the conversation and its file change together; a file that cannot be
written turns saving off with one message, and the chat goes on."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import until
from tests.fakes import STATS, ScriptedEngine
from tui.app import VramdeckApp
from tui.chat.conversation import Conversation
from tui.chat.recorder import ConversationRecorder
from tui.chat.store import ConversationStore
from tui.engine.settings import LoadSettings
from tui.engine.status import Phase
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.widgets.prompt_input import PromptInput


def test_every_edit_reaches_the_file(tmp_path):
    store = ConversationStore(tmp_path)
    rec = ConversationRecorder(store, Conversation(system_prompt="Be brief."))
    rec.user("one")
    turn = rec.start_reply()
    rec.piece(turn, "an")
    rec.piece(turn, "swer")
    rec.finish_reply(turn, STATS, partial=False, note="")
    rec.user("two")
    empty = rec.start_reply()
    rec.finish_reply(empty, None, partial=True, note="stopped")  # nothing came: taken back
    rec.set_system_prompt("Be long.")
    rec.close()
    again = store.load(rec.conversation.id)
    assert [(t.role, t.content) for t in again.turns] == [("user", "one"), ("assistant", "answer"),
                                                          ("user", "two")]
    assert again.system_prompt == "Be long." and again.turns[1].stats == STATS


def test_an_unwritable_folder_turns_saving_off_once(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rec = ConversationRecorder(ConversationStore(blocker / "conversations"), Conversation())
    rec.user("hello")
    problem = rec.take_saving_problem()
    assert problem.startswith("Saving is off") and rec.take_saving_problem() == ""
    turn = rec.start_reply()
    rec.piece(turn, "still here")
    assert rec.conversation.turns[-1].content == "still here"


async def test_the_app_keeps_chatting_when_conversations_cannot_be_saved(tmp_path):
    """Was: the first message made the app exit with status 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml(no_driver=True)),
                      settings=LoadSettings(model_path="/models/m.gguf"), use_dry_run=False,
                      conversation_store=ConversationStore(blocker / "conversations"))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.engine_status.phase is Phase.READY)
        app.screen.query_one(PromptInput).load_text("Hello")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.screen.conversation.turns) == 2
                    and app.screen.conversation.turns[-1].stats is not None)
        assert app.is_running
        assert any("Saving is off" in n.message for n in app._notifications)
    assert not Path(blocker / "conversations").exists()
