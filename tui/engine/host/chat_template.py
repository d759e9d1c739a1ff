"""A model's chat template, rendered with bounds: a template is code from the GGUF file.

llama-cpp-python renders it in Jinja's immutable sandbox, which stops attribute tricks but not
work: three nested `range(99999)` loops run for days, and `'x' * 10**10` asks for 10 GB. Here
rendering stops when it runs past `limit_s` or when the reply is cancelled (Esc), checked on
every line the template executes (a trace on the template's own frames only), and repetition
(`*`, `**`) that would build more than MAX_ITEMS is refused.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence

from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

LIMIT_S = float(os.environ.get("VRAMDECK_TEMPLATE_LIMIT_S", "10"))
"""Real templates render a long conversation in milliseconds; this is a hang, not a template."""
MAX_ITEMS = 1 << 22
"""Characters or items one `*` may build (4 M: far past any prompt a context holds)."""
TEMPLATE_FILE = "<template>"
"""The file name Jinja gives code compiled from a string: the frames traced."""


class TemplateError(Exception):
    """The chat template did not render; the message says why, for the user."""


class TemplateTooSlow(TemplateError):
    pass


class TemplateStopped(Exception):
    """Cancelled (Esc) while the template was rendering."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError(f"the template raises a number to the power {right}")
            return left ** right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple, bytes)) and isinstance(times, int):
                if len(seq) * max(times, 0) > MAX_ITEMS:
                    raise SecurityError(f"the template repeats {len(seq):,} items {times:,} times")
        return left * right


class BoundedChatTemplate:
    """Jinja2ChatFormatter with its environment swapped for the bounded sandbox."""

    def __init__(self, template: str, eos_token: str, bos_token: str, limit_s: float = LIMIT_S):
        self.limit_s = limit_s
        # built on an empty template: compiling the real one in llama-cpp-python's sandbox would fold
        # constants such as 'x' * 10**10 at compile time, before any bound applies
        self.formatter = Jinja2ChatFormatter("", eos_token=eos_token, bos_token=bos_token)
        env = _BoundedSandbox(trim_blocks=True, lstrip_blocks=True,
                              extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, "jinja2.ext.loopcontrols"])
        env.filters["tojson"] = Jinja2ChatFormatter.tojson
        self.formatter.template = template
        self.formatter._environment = env.from_string(template)

    def render(self, messages: Sequence[dict[str, str]], cancelled: threading.Event | None = None) -> str:
        """The prompt for `messages`. TemplateTooSlow, TemplateError or TemplateStopped."""
        deadline = time.monotonic() + self.limit_s

        def on_line(frame, event, arg):
            if cancelled is not None and cancelled.is_set():
                raise TemplateStopped()
            if time.monotonic() > deadline:
                raise TemplateTooSlow(f"the model's chat template ran for more than {self.limit_s:g} s "
                                      "without finishing (a loop that does not end): it is not used")
            return on_line

        def on_call(frame, event, arg):
            return on_line if frame.f_code.co_filename == TEMPLATE_FILE else None

        previous = sys.gettrace()
        sys.settrace(on_call)
        try:
            return self.formatter(messages=[dict(m) for m in messages]).prompt  # type: ignore[arg-type]
        except (TemplateError, TemplateStopped):
            raise
        except SecurityError as exc:
            raise TemplateError(f"the model's chat template was refused: {exc}") from None
        except MemoryError:
            raise TemplateError("the model's chat template asked for more memory than there is") from None
        except RecursionError:
            raise TemplateError("the model's chat template recursed without end") from None
        finally:
            sys.settrace(previous)
