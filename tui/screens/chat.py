"""Chat: the conversation, the composer, and the engine's status line.

Each conversation is saved as it happens (tui/chat/store.py): a kill of the app or the engine
keeps everything up to the last streamed piece.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from tui.chat.conversation import Conversation, Turn, recent_user_text
from tui.chat.recorder import ConversationRecorder
from tui.chat.think import code_blocks
from tui.engine.protocol import (
    ChatDone,
    ChatFailed,
    EngineCrashed,
    TextPiece,
)
from tui.engine.status import Phase
from tui.screens.ask import ConfirmScreen, ask_path_and_write
from tui.screens.conversations import ConversationsScreen
from tui.screens.sampling import SamplingScreen, sampling_line
from tui.screens.status_binding import follow_app_status
from tui.screens.typed import VramdeckScreen
from tui.widgets.chat_message import AssistantMessage, MessageAction, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.reply_stream import ThrottledStream
from tui.widgets.status_bar import StatusBar

# Content markup: a Markdown widget here dropped the space after each bold key.
WELCOME = ("Type a message and press [b]Enter[/b] to send; [b]Ctrl+J[/b] adds a new line, [b]↑/↓[/b] "
           "recall earlier messages.\n[b]Esc[/b] stops a reply · [b]Ctrl+R[/b] regenerates it · "
           "[b]Ctrl+T[/b] edits your last message · [b]Ctrl+N[/b] new chat · [b]Ctrl+O[/b] saved "
           "chats · [b]Ctrl+G[/b] sampling and system prompt · [b]Tab[/b] then [b]c[/b] copies a "
           "message.\n[b]F1[/b] all keys · [b]F3[/b] Monitor · [b]F4[/b] Tuner (model, layers, "
           "context) · [b]F5[/b] llama.cpp log")

CONTEXT_WARN = 0.85
"""Warn when this share of the context is used."""



class ChatScreen(VramdeckScreen):
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Redo", id="chat.regenerate", tooltip="regenerate the last reply"),
        Binding("ctrl+t", "edit_last", "Edit", id="chat.edit", tooltip="take back and edit your last message"),
        Binding("ctrl+n,ctrl+l", "new_chat", "New", id="chat.new"),
        Binding("ctrl+o", "conversations", "Chats", id="chat.list"),
        Binding("ctrl+g", "sampling", "Sampling", id="chat.sampling"),
        Binding("ctrl+b", "drop_oldest", "Drop oldest turn", show=False, id="chat.drop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._recorder: ConversationRecorder | None = None

    @property
    def recorder(self) -> ConversationRecorder:
        """The conversation on screen and its file, changed together."""
        if self._recorder is None:
            self._recorder = ConversationRecorder(self.app.conversation_store, Conversation())
        return self._recorder

    @property
    def conversation(self) -> Conversation:
        return self.recorder.conversation

    def _switch_to(self, conversation: Conversation, already_saved: bool = False) -> None:
        self.recorder.close()
        self._recorder = ConversationRecorder(self.app.conversation_store, conversation,
                                              already_saved)

    def _saving_checked(self) -> None:
        """Say once that saving turned off (the chat goes on)."""
        problem = self.recorder.take_saving_problem()
        if problem:
            self.notify(problem, severity="error", timeout=15)

    def on_screen_resume(self) -> None:
        if not self.conversation.turns:
            self.conversation.system_prompt = self.app.system_prompt
        self._show_sampling()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="conversation"):
            yield Static(WELCOME, id="welcome")
        yield Static("", id="context-warning")
        yield PromptInput(id="prompt")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conversation", VerticalScroll).anchor()
        follow_app_status(self)
        self.watch(self.app, "generation", self._context_changed)
        self.watch(self.app, "engine_status", self._context_changed)
        prompt = self.query_one(PromptInput)
        prompt.border_title = "Message · Enter sends · Ctrl+J new line"
        self._show_sampling()
        prompt.focus()

    def _show_sampling(self) -> None:
        self.query_one(PromptInput).border_subtitle = sampling_line(self.app.sampling)

    def _context_changed(self, *_) -> None:
        facts = self.app.engine_status.facts
        used = self.app.generation.context_used
        if (facts, used) == getattr(self, "_context_shown", None):
            return  # the generation changed by a streamed piece only
        self._context_shown = (facts, used)
        warning = self.query_one("#context-warning", Static)
        if facts and facts.n_ctx and used >= CONTEXT_WARN * facts.n_ctx:
            warning.update(f"⚠ Context {used / facts.n_ctx:.0%} full ({used:,} of {facts.n_ctx:,} "
                           "tokens): the next reply may not fit. Ctrl+B drops the oldest exchange; "
                           "F4 reloads with a longer context.")
            warning.display = True
        else:
            warning.display = False

    # ------------------------------------------------------------------ showing

    @property
    def view(self) -> VerticalScroll:
        return self.query_one("#conversation", VerticalScroll)

    async def show_conversation(self) -> None:
        """Rebuild the view from self.conversation (reopen, drop oldest)."""
        view = self.view
        await view.remove_children()
        if not self.conversation.turns:
            await view.mount(Static(WELCOME, id="welcome"))
            return
        widgets = []
        for turn in self.conversation.turns:
            if turn.role == "user":
                widgets.append(UserMessage(turn.content))
            else:
                widgets.append(AssistantMessage(turn.content))
        await view.mount_all(widgets)
        for turn, widget in zip(self.conversation.turns, widgets, strict=True):
            if isinstance(widget, AssistantMessage):
                widget.show_stats(turn.stats, turn.partial, turn.note if turn.partial else "")
        view.scroll_end(animate=False)
        view.anchor()

    # ------------------------------------------------------------------ sending

    @property
    def replying(self) -> bool:
        return any(w.is_running for w in self.workers if w.group == "reply")

    def _can_send(self) -> bool:
        if self.replying:
            self.notify("A reply is still streaming: Esc stops it.", severity="warning")
            return False
        phase = self.app.engine_status.phase
        if phase is not Phase.READY:
            what = "The model is loading" if phase is Phase.LOADING else "No model is loaded"
            self.notify(f"{what}; your message is kept. "
                        f"{'' if phase is Phase.LOADING else 'Load one in the Tuner (F4).'}",
                        severity="warning")
            return False
        return True

    @on(PromptInput.Submitted)
    async def send(self, event: PromptInput.Submitted) -> None:
        if not self._can_send():
            return
        event.input.clear()
        with contextlib.suppress(Exception):
            await self.query_one("#welcome").remove()
        self.recorder.user(event.text)
        self._saving_checked()
        await self.view.mount(UserMessage(event.text))
        await self._start_reply()

    async def _start_reply(self) -> None:
        reply = self.recorder.start_reply()
        widget = AssistantMessage()
        await self.view.mount(widget)
        self.view.anchor()
        self.stream_reply(reply, widget)

    @work(exclusive=True, group="reply", exit_on_error=False)
    async def stream_reply(self, turn: Turn, widget: AssistantMessage) -> None:
        stream = ThrottledStream(widget.markdown, self.set_timer)
        note, too_long, stalled = "", False, False
        app = self.app
        try:
            async with contextlib.aclosing(app.engine.chat(self.conversation.messages(),
                                                           app.sampling)) as events:
                async for event in events:
                    app.generation = app.generation.apply(event, time.monotonic())
                    if isinstance(event, TextPiece):
                        self.recorder.piece(turn, event.text)
                        await stream.add(widget.feed(event.text))
                    elif isinstance(event, ChatDone):
                        turn.stats = event.stats
                        turn.partial = event.stats.stop_reason == "cancelled"
                        turn.note = "stopped" if turn.partial else ""
                    elif isinstance(event, ChatFailed):
                        note, too_long = event.message, event.reason == "prompt_too_long"
                        stalled = event.reason == "stalled"
                    elif isinstance(event, EngineCrashed):
                        note = f"{event.describe()} The reply so far is kept."
        finally:
            await stream.close()
            app.generation = app.generation.ended()
        kept = bool(turn.content)  # nothing came: no empty reply stays behind
        self.recorder.finish_reply(turn, turn.stats, turn.partial or bool(note), note or turn.note)
        self._saving_checked()
        if kept:
            widget.show_stats(turn.stats, turn.partial, note)
        else:
            await widget.remove()
            if note:
                self.notify(note, severity="error", timeout=15)
        if too_long:
            self.offer_to_drop_oldest()
        if stalled:
            self.offer_engine_restart(note)

    def offer_engine_restart(self, why: str) -> None:
        """The engine stopped answering: end it and load the same settings in a fresh one."""
        def answered(yes: bool | None) -> None:
            settings = self.app.current_settings
            if yes and settings is not None:
                self.app.load_model(settings)
        self.app.push_screen(ConfirmScreen(
            f"{why}\nRestart the engine? (It is ended and the model loaded again; the chat is "
            "kept.)"), answered)

    def offer_to_drop_oldest(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._drop_and_resend(), group="drop")
        self.app.push_screen(ConfirmScreen(
            "The conversation no longer fits the model's context.\nDrop the oldest exchange "
            "and send again? (Or reload with a longer context in the Tuner.)"), answered)

    async def _drop_and_resend(self) -> None:
        if not self.recorder.drop_oldest():
            self.notify("Only one message is left and it alone does not fit: shorten it, or "
                        "reload with a longer context (F4).", severity="error", timeout=15)
            return
        await self.show_conversation()
        if self.conversation.turns and self.conversation.turns[-1].role == "user" and self._can_send():
            await self._start_reply()

    # ------------------------------------------------------------------ actions

    async def action_stop(self) -> None:
        if self.replying:
            await self.app.engine.cancel()

    async def action_regenerate(self) -> None:
        turns = self.conversation.turns
        if not turns or turns[-1].role != "assistant":
            self.notify("No reply to regenerate yet.", severity="warning")
            return
        if not self._can_send():
            return
        self.recorder.keep_turns(len(turns) - 1)
        await self.view.children[-1].remove()
        await self._start_reply()

    async def action_edit_last(self) -> None:
        """Put your last message back in the composer; it and what followed are taken back."""
        if self.replying:
            self.notify("Stop the reply first (Esc).", severity="warning")
            return
        turns = self.conversation.turns
        users = [i for i, t in enumerate(turns) if t.role == "user"]
        if not users:
            self.notify("No message to edit yet.", severity="warning")
            return
        i = users[-1]
        text = turns[i].content
        self.recorder.keep_turns(i)
        for widget in list(self.view.children)[i:]:
            await widget.remove()
        prompt = self.query_one(PromptInput)
        prompt.load_text(text)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()

    async def action_drop_oldest(self) -> None:
        if self.replying:
            return
        if not self.recorder.drop_oldest():
            self.notify("Nothing to drop: fewer than two exchanges.", severity="warning")
            return
        await self.show_conversation()

    async def action_new_chat(self) -> None:
        await self.action_stop()
        self._switch_to(Conversation(system_prompt=self.app.system_prompt))
        await self.show_conversation()
        self.app.generation = self.app.generation.context_reset()

    def action_conversations(self) -> None:
        async def chosen(conv_id: str | None) -> None:
            if not conv_id:
                return
            await self.action_stop()
            try:
                conv = self.app.conversation_store.load(conv_id)
            except (OSError, ValueError) as exc:
                self.notify(f"Cannot open it: {exc}", severity="error")
                return
            if conv.skipped_lines:
                self.notify(f"{conv.skipped_lines} damaged line"
                            f"{'s' if conv.skipped_lines != 1 else ''} of this conversation's file "
                            "could not be read and were skipped; the rest is here.",
                            severity="warning", timeout=10)
            self._switch_to(conv, already_saved=True)  # the file has its meta line already
            await self.show_conversation()
            # the engine re-reads it with the next message
            self.app.generation = self.app.generation.context_reset()
        self.app.push_screen(ConversationsScreen(self.app.conversation_store), chosen)

    def action_sampling(self) -> None:
        def chosen(result) -> None:
            if result is None:
                return
            sampling, system_prompt = result
            self.app.sampling = sampling
            if system_prompt != self.conversation.system_prompt:
                self.app.system_prompt = system_prompt
                self.recorder.set_system_prompt(system_prompt)
            self._show_sampling()
        self.app.push_screen(SamplingScreen(self.app.sampling, self.conversation.system_prompt),
                             chosen)

    @on(MessageAction)
    def message_action(self, event: MessageAction) -> None:
        if event.action == "copy":
            self.app.copy_to_clipboard(event.text)
            self.notify(f"Copied {len(event.text):,} characters (OSC 52: your terminal's clipboard).")
            return
        blocks = code_blocks(event.text)
        if not blocks:
            self.notify("This message has no code block.", severity="warning")
            return
        plural = "s" if len(blocks) > 1 else ""
        ask_path_and_write(self.app, "Save the code block(s) to:", str(Path.cwd() / "snippet.txt"),
                           lambda: "\n\n".join(b.rstrip("\n") for b in blocks) + "\n",
                           f"Saved {len(blocks)} code block{plural} to")


def recent_prompts(app, n: int = 3) -> str:
    """The user's last `n` messages in the app's chat, for an auto-tune with a draft to be scored
    on; "" when there are none (then the shipped text is used)."""
    try:
        chat = next((s for s in app.get_screen_stack("chat") if isinstance(s, ChatScreen)), None)
    except KeyError:
        return ""
    return recent_user_text(chat.conversation, n) if chat else ""
