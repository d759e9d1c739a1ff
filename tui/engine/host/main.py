"""The engine process: read commands from stdin, run them one at a time, answer on the channel.

A reader thread takes commands off stdin so that `cancel` is seen while a reply is being generated;
everything that touches llama.cpp runs on the main thread. When stdin closes (the UI is gone)
the process exits at once, so no orphan keeps GPU memory.
"""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback

from tui.engine.host.channel import Channel


def main() -> None:
    channel = Channel()
    # Capture llama.cpp's log before anything loads, then import the heavy parts.
    import llama_cpp as L

    log_cb = L.llama_log_callback(lambda level, text, _user: channel.log(level, text))
    L.llama_log_set(log_cb, None)
    L.llama_backend_init()

    from tui.engine.host.session import EngineSession

    engine = EngineSession(channel, L)
    commands: queue.Queue = queue.Queue()

    def read_stdin() -> None:
        for raw in sys.stdin.buffer:
            engine.receive(raw, commands)
        os._exit(0)  # the UI closed our stdin: it is gone or wants us gone, now

    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    engine.hello()
    channel.start_heartbeat()
    while True:
        command = commands.get()
        if command is None:
            break
        channel.busy(True)
        try:
            engine.handle(command)
        except Exception:  # a bug of ours: say so, keep serving
            engine.fail(command, traceback.format_exc())
        finally:
            channel.busy(False)
    engine.shutdown()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
