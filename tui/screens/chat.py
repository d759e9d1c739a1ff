"""Chat: the conversation, the composer, and the engine's status line."""

from __future__ import annotations

import contextlib
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown

from tui.chat.conversation import Conversation, Turn
from tui.engine.protocol import ChatDone, ChatFailed, EngineCrashed, PromptProcessed, TextPiece
from tui.engine.status import Phase
from tui.screens.status_binding import follow_app_status
from tui.widgets.chat_message import AssistantMessage, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.status_bar import StatusBar

WELCOME = ("Type a message and press **Enter** to send; **Ctrl+J** adds a new line, **↑/↓** recall "
           "earlier messages.  \n**Esc** stops a reply, **Ctrl+L** starts a new chat.  \n"
           "**F3** Monitor · **F4** Tuner (model, layers, context) · **F5** llama.cpp log")


class ChatScreen(Screen):
    BINDINGS = [
        Binding("escape", "stop", "Stop reply", id="chat.stop"),
        Binding("ctrl+l", "new_chat", "New chat", id="chat.new"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation = Conversation()

    def on_screen_resume(self) -> None:
        if not self.conversation.turns:
            self.conversation.system_prompt = self.app.system_prompt

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="conversation"):
            yield Markdown(WELCOME, id="welcome")
        yield PromptInput(id="prompt")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conversation", VerticalScroll).anchor()
        follow_app_status(self)
        self.query_one(PromptInput).focus()

    @property
    def replying(self) -> bool:
        return any(w.is_running for w in self.workers if w.group == "reply")

    @on(PromptInput.Submitted)
    async def send(self, event: PromptInput.Submitted) -> None:
        if self.replying:
            self.notify("A reply is still streaming: Esc stops it.", severity="warning")
            return
        if self.app.engine_status.phase is not Phase.READY:
            self.notify("No model is loaded yet; your message is kept. Load one in the Tuner (F4).",
                        severity="warning")
            return
        event.input.clear()
        with contextlib.suppress(Exception):
            await self.query_one("#welcome").remove()
        self.conversation.add_user(event.text)
        reply = self.conversation.add_reply()
        log = self.query_one("#conversation", VerticalScroll)
        widget = AssistantMessage()
        await log.mount_all([UserMessage(event.text), widget])
        log.anchor()
        self.stream_reply(reply, widget)

    @work(exclusive=True, group="reply", exit_on_error=False)
    async def stream_reply(self, turn: Turn, widget: AssistantMessage) -> None:
        stream = Markdown.get_stream(widget.markdown)
        note = ""
        engine = self.app.engine
        first_at, tokens = 0.0, 0
        try:
            async with contextlib.aclosing(engine.chat(self.conversation.messages(),
                                                       self.app.sampling)) as events:
                async for event in events:
                    if isinstance(event, TextPiece):
                        turn.content += event.text
                        await stream.write(event.text)
                        now = time.monotonic()
                        if tokens == 0:
                            first_at = now
                        tokens += event.tokens
                        if now > first_at:
                            self.app.live_tokens_per_s = (tokens - 1) / (now - first_at)
                    elif isinstance(event, PromptProcessed):
                        self.app.live_prompt_tokens_per_s = event.tokens_per_s
                    elif isinstance(event, ChatDone):
                        turn.stats = event.stats
                        turn.partial = event.stats.stop_reason == "cancelled"
                        self.app.last_stats = event.stats
                        self.app.context_used = event.stats.context_used
                    elif isinstance(event, ChatFailed):
                        note = event.message
                    elif isinstance(event, EngineCrashed):
                        note = f"{event.describe()} The reply so far is kept."
        finally:
            await stream.stop()
            self.app.live_tokens_per_s = 0.0
            self.app.live_prompt_tokens_per_s = 0.0
        if note:
            turn.partial = True
            if not turn.content:
                self.conversation.turns.remove(turn)
        widget.show_stats(turn.stats, turn.partial, note)

    async def action_stop(self) -> None:
        if self.replying:
            await self.app.engine.cancel()

    async def action_new_chat(self) -> None:
        await self.action_stop()
        self.conversation = Conversation(system_prompt=self.conversation.system_prompt)
        log = self.query_one("#conversation", VerticalScroll)
        await log.remove_children()
        await log.mount(Markdown(WELCOME, id="welcome"))
        self.app.context_used = 0
