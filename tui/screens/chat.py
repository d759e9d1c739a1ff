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
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from tui.chat.conversation import Conversation, Turn
from tui.chat.store import ConversationLog, stats_dict
from tui.chat.think import code_blocks
from tui.engine.protocol import (ChatDone, ChatFailed, EngineCrashed, PromptProcessed,
                                 PromptProgress, TextPiece)
from tui.engine.status import Phase
from tui.screens.ask import ConfirmScreen, ask_path_and_write
from tui.screens.conversations import ConversationsScreen
from tui.screens.sampling import SamplingScreen, sampling_line
from tui.screens.status_binding import follow_app_status
from tui.widgets.chat_message import AssistantMessage, MessageAction, UserMessage
from tui.widgets.prompt_input import PromptInput
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

RENDER_INTERVAL = 0.1
"""A streaming reply's Markdown is updated at most this often (10 times a second): each update
re-lays out the conversation; at 20 a second a key press waited behind it (p95 66 ms on 2
cores), at 10 a second it does not (p95 13 ms): benchmarks/chat_stream.py."""


class ChatScreen(Screen):
    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="chat.regenerate"),
        Binding("ctrl+t", "edit_last", "Edit last", id="chat.edit"),
        Binding("ctrl+n,ctrl+l", "new_chat", "New", id="chat.new"),
        Binding("ctrl+o", "conversations", "Chats", id="chat.list"),
        Binding("ctrl+g", "sampling", "Sampling", id="chat.sampling"),
        Binding("ctrl+b", "drop_oldest", "Drop oldest turn", show=False, id="chat.drop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation = Conversation()
        self._log: ConversationLog | None = None
        self._meta_written = False
        self._save_failed = False

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
        self.watch(self.app, "context_used", self._context_changed)
        self.watch(self.app, "engine_status", self._context_changed)
        prompt = self.query_one(PromptInput)
        prompt.border_title = "Message · Enter sends · Ctrl+J new line"
        self._show_sampling()
        prompt.focus()

    def _show_sampling(self) -> None:
        self.query_one(PromptInput).border_subtitle = sampling_line(self.app.sampling)

    def _context_changed(self, *_) -> None:
        facts = self.app.engine_status.facts
        used = self.app.context_used
        warning = self.query_one("#context-warning", Static)
        if facts and facts.n_ctx and used >= CONTEXT_WARN * facts.n_ctx:
            warning.update(f"⚠ Context {used / facts.n_ctx:.0%} full ({used:,} of {facts.n_ctx:,} "
                           "tokens): the next reply may not fit. Ctrl+B drops the oldest exchange; "
                           "F4 reloads with a longer context.")
            warning.display = True
        else:
            warning.display = False

    # ------------------------------------------------------------------ saving

    def _save(self, **event) -> None:
        """Append one event to this conversation's file (created with its first message). When
        the file cannot be written, chatting goes on and the user is told once that saving is off."""
        try:
            if self._log is None:
                self._log = self.app.conversation_store.start(self.conversation)
            if not self._meta_written:
                c = self.conversation
                self._log.append(t="meta", id=c.id, created=c.created, system_prompt=c.system_prompt)
                self._meta_written = True
            self._log.append(**event)
        except OSError as exc:
            if not self._save_failed:
                self.notify(f"Saving is off for this conversation: {exc}", severity="error",
                            timeout=15)
            self._save_failed = True

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log, self._meta_written = None, False

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
        self.conversation.add_user(event.text)
        self._save(t="user", text=event.text)
        await self.view.mount(UserMessage(event.text))
        await self._start_reply()

    async def _start_reply(self) -> None:
        reply = self.conversation.add_reply()
        self._save(t="reply")
        widget = AssistantMessage()
        await self.view.mount(widget)
        self.view.anchor()
        self.stream_reply(reply, widget)

    @work(exclusive=True, group="reply", exit_on_error=False)
    async def stream_reply(self, turn: Turn, widget: AssistantMessage) -> None:
        stream = Markdown.get_stream(widget.markdown)
        note, too_long, stalled = "", False, False
        engine = self.app.engine
        first_at, tokens = 0.0, 0
        pending, last_render = [], 0.0
        timer = None

        async def render() -> None:
            nonlocal last_render, timer
            timer = None
            if pending:
                text = "".join(pending)
                pending.clear()
                last_render = time.monotonic()
                await stream.write(text)

        try:
            async with contextlib.aclosing(engine.chat(self.conversation.messages(),
                                                       self.app.sampling)) as events:
                async for event in events:
                    if isinstance(event, TextPiece):
                        turn.content += event.text
                        self._save(t="text", text=event.text)
                        delta = widget.feed(event.text)
                        now = time.monotonic()
                        if delta:
                            pending.append(delta)
                            if now - last_render >= RENDER_INTERVAL:
                                await render()
                            elif timer is None:  # render it soon even if nothing more comes
                                timer = self.set_timer(RENDER_INTERVAL - (now - last_render), render)
                        if tokens == 0:
                            first_at = now
                        tokens += event.tokens
                        if now > first_at:
                            self.app.live_tokens_per_s = (tokens - 1) / (now - first_at)
                    elif isinstance(event, PromptProgress):
                        self.app.prompt_progress = (event.done, event.total, event.tokens_per_s)
                    elif isinstance(event, PromptProcessed):
                        self.app.prompt_progress = None
                        self.app.live_prompt_tokens_per_s = event.tokens_per_s
                    elif isinstance(event, ChatDone):
                        turn.stats = event.stats
                        turn.partial = event.stats.stop_reason == "cancelled"
                        turn.note = "stopped" if turn.partial else ""
                        self.app.last_stats = event.stats
                        self.app.context_used = event.stats.context_used
                    elif isinstance(event, ChatFailed):
                        note, too_long = event.message, event.reason == "prompt_too_long"
                        stalled = event.reason == "stalled"
                    elif isinstance(event, EngineCrashed):
                        note = f"{event.describe()} The reply so far is kept."
        finally:
            if timer is not None:
                timer.stop()
            await render()
            await stream.stop()
            self.app.live_tokens_per_s = 0.0
            self.app.live_prompt_tokens_per_s = 0.0
            self.app.prompt_progress = None
        if note:
            turn.partial, turn.note = True, note
        if turn.content:
            self._save(t="done", stats=stats_dict(turn.stats), partial=turn.partial, note=turn.note)
            widget.show_stats(turn.stats, turn.partial, note)
        else:  # nothing came: no empty reply stays behind
            self.conversation.turns.remove(turn)
            self._save(t="truncate", turns=len(self.conversation.turns))
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
        if not self.conversation.drop_oldest_exchange():
            self.notify("Only one message is left and it alone does not fit: shorten it, or "
                        "reload with a longer context (F4).", severity="error", timeout=15)
            return
        self._save(t="drop_oldest")
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
        turns.pop()
        self._save(t="truncate", turns=len(turns))
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
        del turns[i:]
        self._save(t="truncate", turns=i)
        for widget in list(self.view.children)[i:]:
            await widget.remove()
        prompt = self.query_one(PromptInput)
        prompt.load_text(text)
        prompt.move_cursor(prompt.document.end)
        prompt.focus()

    async def action_drop_oldest(self) -> None:
        if self.replying:
            return
        if not self.conversation.drop_oldest_exchange():
            self.notify("Nothing to drop: fewer than two exchanges.", severity="warning")
            return
        self._save(t="drop_oldest")
        await self.show_conversation()

    async def action_new_chat(self) -> None:
        await self.action_stop()
        self._close_log()
        self.conversation = Conversation(system_prompt=self.app.system_prompt)
        await self.show_conversation()
        self.app.context_used = 0

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
            self._close_log()
            self.conversation = conv
            self._log = self.app.conversation_store.start(conv)
            self._meta_written = True  # the file has its meta line already
            await self.show_conversation()
            self.app.context_used = 0  # the engine re-reads it with the next message
        self.app.push_screen(ConversationsScreen(self.app.conversation_store), chosen)

    def action_sampling(self) -> None:
        def chosen(result) -> None:
            if result is None:
                return
            sampling, system_prompt = result
            self.app.sampling = sampling
            if system_prompt != self.conversation.system_prompt:
                self.conversation.system_prompt = self.app.system_prompt = system_prompt
                if self._meta_written:
                    self._save(t="system", system_prompt=system_prompt)
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
