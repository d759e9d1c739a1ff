"""A scripted engine for deterministic snapshots: same replies, same figures, no process."""

from __future__ import annotations

import asyncio
from collections import deque

from tui.engine.engine_like import EngineLike
from tui.engine.protocol import (
    BenchResult,
    ChatDone,
    ChatStats,
    DraftBenchResult,
    Hello,
    Loaded,
    LoadFailed,
    LoadProgress,
    ModelFacts,
    TextPiece,
)
from tui.engine.settings import LoadSettings

GiB = 1024**3

FACTS = ModelFacts(path="/models/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
                   name="Meta Llama 3.1 8B Instruct", architecture="llama", n_layer=32,
                   n_params=8_030_261_248, size_bytes=4_920_734_720, quant="Q4_K_M", n_ctx=8192,
                   n_ctx_train=131072, has_chat_template=True, layers_offloaded=33,
                   layers_total=33, load_seconds=2.41, vram_bytes_per_gpu=(int(6.2 * GiB),),
                   rss_bytes=int(0.9 * GiB),
                   buffers={"model": {"CUDA0": 4617 * 2**20, "CPU_Mapped": 282 * 2**20},
                            "kv": {"CUDA0": 1024 * 2**20}, "compute": {"CUDA0": 258 * 2**20}})

REPLY = ("Here is a function that adds two numbers:\n\n```python\ndef add(a: int, b: int) -> int:\n"
         "    return a + b\n```\n\nCall it as `add(2, 3)`, which returns **5**.")

STATS = ChatStats(prompt_tokens=31, generated_tokens=42, time_to_first_token_s=0.118,
                  prompt_tokens_per_s=1830.5, generation_tokens_per_s=97.3, stop_reason="eos",
                  context_used=73, n_ctx=8192)


OOM = LoadFailed(kind="oom_device", detail="cudaMalloc failed: out of memory")


class ScriptedEngine:
    def __init__(self, facts: ModelFacts = FACTS, reply: str = REPLY, gpu_offload: bool = True,
                 pid: int = 4242, fail: LoadFailed | None = None, fail_if=None,
                 hold_after: int | None = None):
        """`fail` fails every load; `fail_if(settings)` fails the loads it returns True for (with
        the LoadFailed it returns, or a GPU out-of-memory for True)."""
        self.facts, self.reply, self.gpu_offload, self._pid, self.fail = facts, reply, gpu_offload, pid, fail
        self.fail_if = fail_if
        self.hold_after = hold_after
        """Stop streaming after this many words and wait (a reply caught mid-stream)."""
        self.loads: list[LoadSettings] = []
        self.log: deque[str] = deque(["llama_model_loader: loaded meta data",
                                      "load_tensors: offloaded 33/33 layers to GPU"])
        self.hello: Hello | None = Hello(pid=pid, llama_cpp_version="0.3.36", gpu_offload=gpu_offload)
        self.loaded: Loaded | None = None
        self._listeners = []
        self.cancelled = False

    def subscribe(self, listener):
        self._listeners.append(listener)
        return lambda: None

    def _notify(self, event):
        for listener in self._listeners:
            listener(event)

    @property
    def pid(self):
        return self._pid if self.loaded else None

    @property
    def running(self):
        return self.loaded is not None

    async def load(self, settings: LoadSettings):
        self._notify(self.hello)
        self._notify(LoadProgress(fraction=0.5))
        self.loads.append(settings)
        fail = self.fail
        if fail is None and self.fail_if is not None:
            verdict = self.fail_if(settings)
            fail = verdict if isinstance(verdict, LoadFailed) else (OOM if verdict else None)
        if fail is not None:
            self.loaded = None
            self._notify(fail)
            return fail
        layers = self.facts.layers_total if settings.n_gpu_layers < 0 else min(
            settings.n_gpu_layers, self.facts.layers_total)
        if not self.gpu_offload:  # a CPU build offloads nothing, whatever was asked
            layers = 0
        vram = self.facts.vram_bytes_per_gpu
        if vram and self.facts.layers_total:  # context + buffers, then weights by layers offloaded
            vram = tuple(int(0.8 * GiB + (v - 0.8 * GiB) * layers / self.facts.layers_total)
                         for v in vram)
        facts = self.facts.__class__(**{**self.facts.__dict__, "path": settings.model_path,
                                        "n_ctx": settings.n_ctx, "layers_offloaded": layers,
                                        "vram_bytes_per_gpu": vram})
        self.loaded = Loaded(facts=facts)
        self._notify(self.loaded)
        return self.loaded

    async def chat(self, messages, sampling=None):
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            if i == self.hold_after:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
            yield TextPiece(request_id=1, text=word + (" " if i < len(words) - 1 else ""))
        yield ChatDone(request_id=1, stats=STATS)

    async def cancel(self):
        self.cancelled = True

    async def bench(self, n_prompt: int = 512, n_gen: int = 128, repetitions: int = 3,
                    depths: tuple[int, ...] = ()) -> BenchResult:
        """Speeds that fall with the layers left on the CPU, like a real offload does."""
        assert self.loaded is not None, "the scripted engine benchmarks a loaded model"
        share = self.loaded.facts.layers_offloaded / max(1, self.loaded.facts.layers_total)
        tg = round(4.0 + 90.0 * share ** 3, 1)
        if depths:  # slower with more context filled, a little spread between runs
            deepest = max(max(depths), 1)
            runs = tuple(tuple(round(tg * (1 - 0.4 * d / deepest) * (1 + 0.01 * (r - 1)), 2)
                               for r in range(repetitions)) for d in depths)
            return BenchResult(request_id=1, n_prompt=0, n_gen=n_gen,
                               depth_tg=tuple((d, round(sum(r) / len(r), 2))
                                              for d, r in zip(depths, runs, strict=True)),
                               depth_runs=runs)
        return BenchResult(request_id=1, n_prompt=n_prompt, n_gen=n_gen,
                           pp_tokens_per_s=(round(300 + 1500 * share, 1),) * repetitions,
                           tg_tokens_per_s=(tg,) * repetitions)

    async def draft_bench(self, prompt: str, n_gen: int = 128, repetitions: int = 3,
                          forced_acceptance: float = -1.0) -> DraftBenchResult:
        """The target alone as bench says; with a draft loaded, 1.4x that, 80 % of drafts kept."""
        bench = await self.bench(0, n_gen, repetitions)
        drafting = bool(self.loads and self.loads[-1].speculative)
        return DraftBenchResult(request_id=1, n_gen=n_gen, alone_tokens_per_s=bench.tg_tokens_per_s,
                                draft_tokens_per_s=tuple(round(x * 1.4, 1) for x in bench.tg_tokens_per_s)
                                if drafting else (),
                                drafted_tokens=100 if drafting else 0, accepted_tokens=80 if drafting else 0,
                                speculative="model" if drafting else "")

    async def stop(self, timeout: float = 5.0):
        self.loaded = None

    async def perplexity(self, text: str, chunk: int = 512):
        raise NotImplementedError("the scripted engine scores no text")

    async def top_k(self, text: str, chunk: int = 512, k: int = 64, m: int = 64):
        raise NotImplementedError("the scripted engine scores no text")

    async def kld(self, command):
        raise NotImplementedError("the scripted engine scores no text")


def _is_an_engine(engine: ScriptedEngine) -> EngineLike:
    """The type checker (pyright covers this file) holds the scripted engine to the app's
    EngineLike protocol, as it holds the real client."""
    return engine
