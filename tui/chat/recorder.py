"""A conversation and its file, changed together: every edit of the chat is one call here.

The screen never touches the log: it asks the recorder to add a user message, start a reply,
add a piece, finish, take back or drop, and the recorder changes the Conversation and appends
the matching line. When the file cannot be written (a full disk, a read-only folder), chatting
goes on: saving turns off, and `saving_off` says why, once, for the screen to show.
"""

from __future__ import annotations

from tui.chat.conversation import Conversation, Turn
from tui.chat.store import ConversationLog, ConversationStore, stats_dict
from tui.engine.protocol import ChatStats


class ConversationRecorder:
    def __init__(self, store: ConversationStore, conversation: Conversation,
                 already_saved: bool = False):
        """`already_saved`: the conversation came from its file (its meta line is there)."""
        self.store = store
        self.conversation = conversation
        self._log: ConversationLog | None = None
        self._meta_written = already_saved
        self.saving_off: str = ""
        """Why this conversation is no longer saved ("" while it is)."""
        self._unreported = False

    def take_saving_problem(self) -> str:
        """The reason saving turned off, the first time it is asked after that happened."""
        if self._unreported:
            self._unreported = False
            return self.saving_off
        return ""

    def _write(self, **event) -> None:
        if self.saving_off:
            return
        try:
            if self._log is None:
                self._log = self.store.start(self.conversation)
            if not self._meta_written:
                c = self.conversation
                self._log.append(t="meta", id=c.id, created=c.created, system_prompt=c.system_prompt)
                self._meta_written = True
            self._log.append(**event)
        except (OSError, ValueError) as exc:
            self.saving_off = f"Saving is off for this conversation: {exc}"
            self._unreported = True
            self.close()

    # ------------------------------------------------------------------ edits

    def user(self, text: str) -> Turn:
        turn = self.conversation.add_user(text)
        self._write(t="user", text=text)
        return turn

    def start_reply(self) -> Turn:
        turn = self.conversation.add_reply()
        self._write(t="reply")
        return turn

    def piece(self, turn: Turn, text: str) -> None:
        turn.content += text
        self._write(t="text", text=text)

    def finish_reply(self, turn: Turn, stats: ChatStats | None, partial: bool, note: str) -> None:
        """The reply ended; one with no text at all is taken back instead of kept empty."""
        turn.stats, turn.partial, turn.note = stats, partial, note
        if turn.content:
            self._write(t="done", stats=stats_dict(stats), partial=partial, note=note)
        else:
            self.conversation.turns.remove(turn)
            self._write(t="truncate", turns=len(self.conversation.turns))

    def keep_turns(self, n: int) -> None:
        """Keep the first `n` turns (regenerate, edit the last message)."""
        del self.conversation.turns[n:]
        self._write(t="truncate", turns=n)

    def drop_oldest(self) -> bool:
        if not self.conversation.drop_oldest_exchange():
            return False
        self._write(t="drop_oldest")
        return True

    def set_system_prompt(self, prompt: str) -> None:
        self.conversation.system_prompt = prompt
        if self._meta_written:  # before the first message it goes into the meta line
            self._write(t="system", system_prompt=prompt)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
