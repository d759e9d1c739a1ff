"""What the engine process does with each command, and the state it keeps between them."""
# pyright: reportArgumentType=false, reportAttributeAccessIssue=false, reportOptionalMemberAccess=false
# (C bindings through ctypes: handles travel as plain ints and the stubs do not say so)

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import threading
import time
from collections.abc import Callable
from types import ModuleType

import psutil

from tui.engine.errors import classify_load_log, describe_failure
from tui.engine.host.bench import run_bench, run_depth_bench
from tui.engine.host.channel import Channel
from tui.engine.host.chat_template import TemplateError
from tui.engine.host.devices import list_devices
from tui.engine.host.dry_run import parse_buffers
from tui.engine.host.generate import ChatSession, PromptTooLong
from tui.engine.host.runtime import LoadedModel, LoadError
from tui.engine.host.speculative import DraftRefused, LookupDrafter, ModelDrafter, check_vocab
from tui.engine.protocol import (
    BenchCommand,
    BenchResult,
    CancelCommand,
    ChatCommand,
    ChatDone,
    ChatFailed,
    CommandFailed,
    DraftBenchCommand,
    DraftBenchResult,
    FailureKind,
    Hello,
    KldCommand,
    KldResult,
    LoadCommand,
    Loaded,
    LoadFailed,
    LoadProgress,
    Message,
    ModelFacts,
    PackedReference,
    PerplexityCommand,
    PerplexityResult,
    PromptProcessed,
    PromptProgress,
    ShutdownCommand,
    TextPiece,
    TopKCommand,
    TopKResult,
    Unloaded,
    decode,
)
from tui.engine.settings import LoadSettings, SamplingSettings, SettingsError
from tui.models.gguf_info import GgufError, check_model_file
from tui.monitor.nvml import process_vram_bytes

REFERENCE_ARRAYS = {"tokens": ("i4", 1), "ids": ("i4", 2), "logprobs": ("f4", 2), "rest_logp": ("f8", 1),
                    "tail_ids": ("i4", 2), "tail_logprobs": ("f4", 2)}
"""A KL-divergence reference's arrays on the wire (PackedReference): packed type, dimensions."""


class PieceBuffer:
    """Coalesce generated text: the first piece goes out at once, later ones at most every
    `interval` seconds, so the UI process wakes ~60 times a second instead of once per token
    (on a 2-core box each wake-up competes with llama.cpp's threads)."""

    def __init__(self, send: Callable[[str, int], None], interval: float = 0.015):
        self.send, self.interval = send, interval
        self.held = ""
        self.tokens = 0
        self.last = 0.0

    def add(self, text: str, tokens: int = 1) -> None:
        self.held += text
        self.tokens += tokens
        now = time.perf_counter()
        if now - self.last >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.held:
            self.send(self.held, self.tokens)
            self.held = ""
            self.tokens = 0
        self.last = now if now is not None else time.perf_counter()


class EngineSession:
    def __init__(self, channel: Channel, llama: ModuleType):
        self.channel = channel
        self.L = llama
        self.loaded: LoadedModel | None = None
        self.draft: LoadedModel | None = None
        self.chat: ChatSession | None = None
        self.cancel = threading.Event()
        self.current_request = 0

    # ------------------------------------------------------------- stdin thread

    def receive(self, raw: bytes, commands: queue.Queue) -> None:
        """Runs on the reader thread: cancel acts at once, the rest is queued for the main thread."""
        try:
            message = decode(raw)
        except ValueError as exc:
            self.channel.send(CommandFailed(message=str(exc)))
            return
        if isinstance(message, CancelCommand):
            if message.request_id in (0, self.current_request):
                self.cancel.set()
            return
        commands.put(None if isinstance(message, ShutdownCommand) else message)

    # ------------------------------------------------------------- main thread

    def hello(self) -> None:
        L = self.L
        self.channel.send(Hello(
            pid=os.getpid(),
            llama_cpp_version=getattr(L, "__version__", "?"),
            gpu_offload=bool(L.llama_supports_gpu_offload()),
            devices=tuple(list_devices()),
        ))

    def handle(self, command: Message) -> None:
        if isinstance(command, LoadCommand):
            self._load(command)
        elif isinstance(command, ChatCommand):
            self._chat(command)
        elif isinstance(command, BenchCommand):
            self._bench(command)
        elif isinstance(command, PerplexityCommand):
            self._perplexity(command)
        elif isinstance(command, DraftBenchCommand):
            self._draft_bench(command)
        elif isinstance(command, TopKCommand):
            self._top_k(command)
        elif isinstance(command, KldCommand):
            self._kld(command)
        else:
            self.channel.send(CommandFailed(message=f"unexpected command {command.TYPE}"))

    def fail(self, command: Message | None, details: str) -> None:
        """A command ended in an exception of ours: answer it with its own failure type (a load
        with LoadFailed, which is what its caller waits for), then log the traceback."""
        last = details.strip().splitlines()[-1] if details.strip() else "unknown error"
        for line in details.splitlines():
            self.channel.log(4, (line + "\n").encode())
        if isinstance(command, LoadCommand):
            self._load_failed(FailureKind.OTHER, f"engine error: {last}")
            return
        request_id = getattr(command, "request_id", 0)
        if isinstance(command, ChatCommand):
            self.channel.send(ChatFailed(request_id=request_id, message=f"engine error: {last}"))
            return
        self.channel.send(CommandFailed(request_id=request_id, message=f"engine error: {last}"))

    def shutdown(self) -> None:
        self._unload()

    # ------------------------------------------------------------- commands

    def _unload(self) -> None:
        if self.draft is not None:
            self.draft.free()
            self.draft = None
        if self.loaded is not None:
            self.loaded.free()
            self.loaded = None
            self.chat = None
            self.channel.send(Unloaded())

    def _load_failed(self, kind: FailureKind, detail: str) -> None:
        self.channel.send(LoadFailed(kind=kind.value, detail=detail,
                                     log_tail=self.channel.tail()))

    def _load(self, command: LoadCommand) -> None:
        self._unload()
        try:
            settings = LoadSettings.from_dict(command.settings).validated()
        except (SettingsError, TypeError) as exc:
            self._load_failed(FailureKind.BAD_SETTINGS, str(exc))
            return
        try:
            header = check_model_file(settings.model_path)
        except GgufError as exc:
            self._load_failed(FailureKind(exc.kind), str(exc))
            return
        last = [-1.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.01 or fraction >= 1.0:
                last[0] = fraction
                self.channel.send(LoadProgress(fraction=round(fraction, 3)))

        self.channel.recent_log.clear()
        try:
            loaded = LoadedModel.load(settings, header, progress, lambda: list(self.channel.recent_log))
        except LoadError:
            kind, detail = classify_load_log(self.channel.recent_log)
            self._load_failed(kind, detail)
            return
        self.loaded = loaded
        buffers = parse_buffers(list(self.channel.recent_log))
        drafter, draft_facts = self._load_draft(settings, loaded)
        self.chat = ChatSession(loaded, drafter)
        facts = ModelFacts(**loaded.describe(), buffers=buffers, **draft_facts,
                           vram_bytes_per_gpu=process_vram_bytes(os.getpid()),
                           rss_bytes=psutil.Process().memory_info().rss)
        self.channel.send(Loaded(facts=facts))

    def _load_draft(self, settings: LoadSettings,
                    target: LoadedModel) -> tuple[ModelDrafter | LookupDrafter | None, dict]:
        """The drafter the settings ask for, and its facts. A draft model that cannot be used
        (missing, damaged, another vocabulary, no room) leaves the target working without it,
        and the facts say why."""
        if settings.speculative == "lookup":
            return LookupDrafter(), {"speculative": "lookup"}
        if settings.speculative != "model":
            return None, {}
        ds = settings.draft_settings()
        facts: dict = {"draft_path": ds.model_path}
        try:
            header = check_model_file(ds.model_path)
        except GgufError as exc:
            return None, {**facts, "draft_problem": f"The draft model cannot be used: {exc}"}
        self.channel.recent_log.clear()
        try:
            draft = LoadedModel.load(ds, header, lambda _f: None, lambda: list(self.channel.recent_log))
        except LoadError:
            kind, detail = classify_load_log(self.channel.recent_log)
            return None, {**facts, "draft_problem": f"The draft model did not load. {describe_failure(kind, detail)}"}
        try:
            check_vocab(target, draft)
        except DraftRefused as exc:
            draft.free()
            return None, {**facts, "draft_problem": str(exc)}
        self.draft = draft
        about = draft.describe()
        facts.update(speculative="model", draft_name=about["name"], draft_quant=about["quant"],
                     draft_size_bytes=about["size_bytes"], draft_n_ctx=about["n_ctx"],
                     draft_layers_offloaded=draft.layers_offloaded, draft_layers_total=draft.layers_total,
                     draft_buffers=parse_buffers(list(self.channel.recent_log)))
        n_vocab = int(self.L.llama_vocab_n_tokens(target.vocab))
        return ModelDrafter(draft, n_vocab, settings.draft_p_min), facts

    def _chat(self, command: ChatCommand) -> None:
        if self.chat is None:
            self.channel.send(ChatFailed(request_id=command.request_id, message="No model is loaded."))
            return
        try:
            sampling = SamplingSettings.from_dict(command.sampling).validated()
        except (SettingsError, TypeError) as exc:
            self.channel.send(ChatFailed(request_id=command.request_id, message=str(exc)))
            return
        self.current_request = command.request_id
        self.cancel.clear()
        rid = command.request_id
        pieces = PieceBuffer(lambda text, n: self.channel.send(TextPiece(
            request_id=rid, text=text, tokens=n, sent_at=round(time.monotonic(), 6))))
        try:
            stats = self.chat.run(command.messages, sampling, self.cancel, pieces.add,
                                  lambda n, tps: self.channel.send(PromptProcessed(
                                      request_id=rid, prompt_tokens=n, tokens_per_s=round(tps, 2))),
                                  lambda done, total, tps: self.channel.send(PromptProgress(
                                      request_id=rid, done=done, total=total,
                                      tokens_per_s=round(tps, 2))))
            pieces.flush()
        except PromptTooLong as exc:
            self.channel.send(ChatFailed(request_id=rid, message=str(exc), reason="prompt_too_long"))
            return
        except TemplateError as exc:
            self.channel.send(ChatFailed(request_id=rid, message=f"{exc}.", reason="template"))
            return
        except Exception as exc:
            self.channel.send(ChatFailed(request_id=rid, message=f"Generation failed: {exc}"))
            return
        finally:
            self.current_request = 0
        self.channel.send(ChatDone(request_id=rid, stats=stats))

    def _no_model(self, command: Message) -> bool:
        """Say "no model" to a request that needs one; True when there is none."""
        if self.loaded is None or self.chat is None:
            self.channel.send(CommandFailed(request_id=command.request_id, message="No model is loaded."))
            return True
        return False

    @contextlib.contextmanager
    def _kv_request(self, command: Message):
        """A request that uses the KV cache on its own: cancellable while it runs, and the
        chat's cached prefix is forgotten after it (the cache was cleared)."""
        self.current_request = command.request_id
        self.cancel.clear()
        try:
            yield
        finally:
            self.current_request = 0
            self.chat.cached = []

    def _perplexity(self, command: PerplexityCommand) -> None:
        if self._no_model(command):
            return
        from tui.engine.host.perplexity import perplexity

        try:
            with self._kv_request(command):
                ppl, n = perplexity(self.loaded, command.text, command.chunk, self.cancel)
        except (ValueError, RuntimeError) as exc:
            self.channel.send(CommandFailed(request_id=command.request_id, message=str(exc)))
            return
        self.channel.send(PerplexityResult(request_id=command.request_id, perplexity=ppl, tokens=n))

    def _top_k(self, command: TopKCommand) -> None:
        if self._no_model(command):
            return
        from tui.engine.host.kld import top_k
        from tui.quality.arrays import pack

        try:
            with self._kv_request(command):
                ref = top_k(self.loaded, command.text, command.chunk, max(1, command.k), max(1, command.m),
                            self.cancel)
        except (ValueError, RuntimeError) as exc:
            self.channel.send(CommandFailed(request_id=command.request_id, message=str(exc)))
            return
        packed = PackedReference(n_vocab=int(ref["n_vocab"]), chunk=int(ref["chunk"]),
                                 **{name: pack(ref[name], kind) for name, (kind, _) in REFERENCE_ARRAYS.items()})
        self.channel.send(TopKResult(request_id=command.request_id, reference=packed, nll=pack(ref["nll"], "f8")))

    def _kld(self, command: KldCommand) -> None:
        if self._no_model(command):
            return
        from tui.engine.host.kld import kl_divergence
        from tui.quality.arrays import pack, unpack
        from tui.quality.store import check_reference_arrays

        packed = command.reference
        try:
            ref = {name: unpack(getattr(packed, name), kind, ndim) for name, (kind, ndim) in REFERENCE_ARRAYS.items()}
            check_reference_arrays(**ref, n_vocab=packed.n_vocab, chunk=packed.chunk)
            with self._kv_request(command):
                out = kl_divergence(self.loaded, command.text, ref, packed.n_vocab, packed.chunk, self.cancel)
        except (ValueError, RuntimeError) as exc:
            self.channel.send(CommandFailed(request_id=command.request_id, message=str(exc)))
            return
        self.channel.send(KldResult(request_id=command.request_id, kld=pack(out["kld"], "f8"),
                                    nll=pack(out["nll"], "f8"), same_top=pack(out["same_top"], "u1")))

    def _bench(self, command: BenchCommand) -> None:
        if self._no_model(command):
            return
        depth_runs: list[tuple[int, list[float]]] = []
        pp: list[float] = []
        tg: list[float] = []
        n_prompt, n_gen = command.n_prompt, command.n_gen
        with self._kv_request(command):
            if command.depths:
                depth_runs = run_depth_bench(self.loaded, list(command.depths), command.n_gen,
                                             max(1, command.repetitions), self.cancel)
            else:
                n_prompt, n_gen, pp, tg = run_bench(self.loaded, command.n_prompt, command.n_gen,
                                                    max(1, command.repetitions), self.cancel)
        self.channel.send(BenchResult(request_id=command.request_id, n_prompt=n_prompt,
                                      n_gen=n_gen, pp_tokens_per_s=tuple(round(x, 2) for x in pp),
                                      tg_tokens_per_s=tuple(round(x, 2) for x in tg),
                                      depth_tg=tuple((d, round(statistics.fmean(r), 2)) for d, r in depth_runs),
                                      depth_runs=tuple(tuple(round(x, 2) for x in r) for _, r in depth_runs)))

    def _draft_bench(self, command: DraftBenchCommand) -> None:
        """tg alone and with the drafter, alternating (ABBA) so that a drift in the machine's
        speed falls on both."""
        if self._no_model(command):
            return
        chat = self.chat
        drafter = chat.drafter  # without one, only the target alone is measured
        greedy = SamplingSettings(temperature=0, max_tokens=max(2, command.n_gen))
        messages = ({"role": "user", "content": command.prompt},)
        alone: list[float] = []
        drafted: list[float] = []
        counts = [0, 0]
        if 0 <= command.forced_acceptance <= 1:
            chat.forced_acceptance = command.forced_acceptance
        try:
            with self._kv_request(command):
                for rep in range(max(1, command.repetitions) + 1):  # the first of each is a warm-up
                    for with_draft in ((False, True) if rep % 2 else (True, False)) if drafter else (False,):
                        if self.cancel.is_set():
                            break
                        chat.drafter = drafter if with_draft else None
                        stats = chat.run(messages, greedy, self.cancel, lambda _t, _n: None, ignore_eos=True)
                        if rep == 0:
                            continue
                        (drafted if with_draft else alone).append(round(stats.generation_tokens_per_s, 2))
                        if with_draft:
                            counts[0] += stats.drafted_tokens
                            counts[1] += stats.accepted_tokens
        except Exception as exc:
            self.channel.send(CommandFailed(request_id=command.request_id, message=f"draft bench failed: {exc}"))
            return
        finally:
            chat.drafter = drafter
            chat.forced_acceptance = None
        self.channel.send(DraftBenchResult(
            request_id=command.request_id, n_gen=greedy.max_tokens, speculative=drafter.kind if drafter else "",
            alone_tokens_per_s=tuple(alone), draft_tokens_per_s=tuple(drafted),
            drafted_tokens=counts[0], accepted_tokens=counts[1],
            forced_acceptance=command.forced_acceptance))
