"""A conversation as Markdown: the title, the system prompt, then each turn under its role."""

from __future__ import annotations

import time

from tui.chat.conversation import Conversation


def to_markdown(conv: Conversation) -> str:
    lines = [f"# {conv.title or 'Conversation'}", "",
             f"*{time.strftime('%Y-%m-%d %H:%M', time.localtime(conv.created))}*", ""]
    if conv.system_prompt:
        lines += ["## System", "", conv.system_prompt, ""]
    for turn in conv.turns:
        lines += [f"## {'User' if turn.role == 'user' else 'Assistant'}", "", turn.content.rstrip(), ""]
        if turn.role == "assistant" and turn.stats:
            s = turn.stats
            lines += [f"*{s.generated_tokens} tokens, {s.generation_tokens_per_s:.1f} tok/s, first "
                      f"token {s.time_to_first_token_s * 1000:.0f} ms*", ""]
        if turn.partial:
            lines += [f"*(reply {turn.note or 'incomplete'})*", ""]
    return "\n".join(lines).rstrip() + "\n"
