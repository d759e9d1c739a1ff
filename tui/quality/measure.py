"""Measure quants against a reference: run the reference once over the shipped text (its top-k
distributions, kept in the store), then each candidate, in an engine that already has it loaded
(the auto-tune's) or in a fresh one. A file measured before against the same reference and text
is answered from the store at once, without loading anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.engine.client import EngineClient, EngineError
from tui.engine.engine_like import EngineLike
from tui.engine.errors import failure_text
from tui.engine.protocol import KldCommand, Loaded, PackedReference, TopKResult
from tui.engine.settings import LoadSettings
from tui.quality.arrays import ArrayError, pack, unpack
from tui.quality.errors import QualityError
from tui.quality.figures import QualityFigures, figures
from tui.quality.fingerprint import file_fingerprint, text_fingerprint
from tui.quality.store import (
    QualityStore,
    ReferenceDistributions,
    StoredDataError,
    StoreWriteError,
    TokenFigures,
)
from tui.tune.text import perplexity_text

CHUNK, TOP_K, TAIL_DRAWS = 512, 64, 64


@dataclass
class QualityLog:
    """What a meter did, for the commands to report and the tests to check."""

    reference_runs: int = 0
    """Times the reference model was run (0 when its stored distributions were used)."""
    candidate_runs: int = 0
    reused: list[str] = field(default_factory=list)
    """Files whose figures came from the store."""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    """What went wrong without losing a figure (a store that could not be written)."""


def _reference_settings(base: LoadSettings, path: Path, chunk: int) -> LoadSettings:
    return base.without_draft().with_changes(model_path=str(path), n_ctx=max(chunk, 512),
                                             type_k="f16", type_v="f16")


class QualityMeter:
    def __init__(self, reference: str | Path, base: LoadSettings, store: QualityStore | None = None,
                 text: str | None = None, chunk: int = CHUNK, k: int = TOP_K, m: int = TAIL_DRAWS,
                 client_factory: Callable[[], EngineLike] = EngineClient):
        self.reference = Path(reference)
        self.base = base
        self.store = store or QualityStore()
        self.text = text if text is not None else perplexity_text()
        self.chunk, self.k, self.m = chunk, k, m
        self.client_factory = client_factory
        self.log = QualityLog()
        self._ref: ReferenceDistributions | None = None
        self._packed = PackedReference()
        """The reference as every KldCommand carries it, packed once."""
        self._ref_fp = ""
        self._ref_from_store = False
        """The reference came from the store: when the engine finds it at odds with the model,
        it is run again once before the model is blamed."""

    @property
    def key(self) -> str:
        return QualityStore.reference_key(self._ref_fp, text_fingerprint(self.text), self.chunk, self.k, self.m)

    @staticmethod
    def _candidate_id(path: str | Path, settings: LoadSettings) -> str:
        """The store id of `path` measured with `settings`: its fingerprint, and the KV cache types
        (they change the figures). Fingerprinting reads 2 MiB: once per measurement."""
        try:
            return f"{file_fingerprint(path)}-{settings.type_k}-{settings.type_v}"
        except OSError as exc:
            raise QualityError(f"{Path(path).name}: {exc}") from None

    async def _load(self, client: EngineLike, settings: LoadSettings) -> None:
        """Load `settings`; out of GPU memory, again with every layer on the CPU."""
        result = await client.load(settings)
        if not isinstance(result, Loaded) and result.kind == "oom_device" and settings.n_gpu_layers != 0:
            result = await client.load(settings.with_changes(n_gpu_layers=0))
        if not isinstance(result, Loaded):
            raise QualityError(f"{Path(settings.model_path).name} did not load: {failure_text(result)}")

    async def prepare(self) -> ReferenceDistributions:
        """The reference's distributions: from the store, or by running it once (a fresh engine)."""
        if self._ref is not None:
            return self._ref
        started = time.monotonic()
        try:
            self._ref_fp = file_fingerprint(self.reference)
        except OSError as exc:
            raise QualityError(f"the reference {self.reference}: {exc}") from None
        ref = self.store.reference(self.key, self.chunk, self.k, self.m)
        self._ref_from_store = ref is not None
        if ref is None:
            client = self.client_factory()
            try:
                await self._load(client, _reference_settings(self.base, self.reference, self.chunk))
                answer = await client.top_k(self.text, self.chunk, self.k, self.m)
            except EngineError as exc:
                raise QualityError(f"the reference {self.reference.name}: {exc}") from None
            finally:
                await client.stop()
            ref = self._from_answer(answer)
            self.log.reference_runs += 1
            self._keep(lambda: self.store.save_reference(self.key, ref))
        self._ref = ref
        self._packed = PackedReference(
            n_vocab=ref.n_vocab, chunk=ref.chunk, tokens=pack(ref.tokens, "i4"), ids=pack(ref.ids, "i4"),
            logprobs=pack(ref.logprobs, "f4"), rest_logp=pack(ref.rest_logp, "f8"),
            tail_ids=pack(ref.tail_ids, "i4"), tail_logprobs=pack(ref.tail_logprobs, "f4"))
        self.log.seconds += time.monotonic() - started
        return ref

    def _keep(self, save: Callable[[], object]) -> None:
        try:
            save()
        except StoreWriteError as exc:
            self.log.warnings.append(str(exc))

    def _from_answer(self, answer: TopKResult) -> ReferenceDistributions:
        r = answer.reference
        try:
            return ReferenceDistributions(
                tokens=unpack(r.tokens, "i4", 1), ids=unpack(r.ids, "i4", 2),
                logprobs=unpack(r.logprobs, "f4", 2), rest_logp=unpack(r.rest_logp, "f8", 1),
                tail_ids=unpack(r.tail_ids, "i4", 2), tail_logprobs=unpack(r.tail_logprobs, "f4", 2),
                nll=unpack(answer.nll, "f8", 1), n_vocab=r.n_vocab, chunk=r.chunk,
                about={"path": str(self.reference), "name": self.reference.name}).check()
        except (ArrayError, StoredDataError) as exc:
            raise QualityError(f"the engine's answer for the reference was damaged: {exc}") from None

    def _stored(self, cid: str) -> QualityFigures | None:
        """Figures of the candidate `cid` from the store, when it was measured against this
        reference before (prepare() first)."""
        assert self._ref is not None
        token_figures = self.store.token_figures(cid, self.key, self._ref.positions)
        return self._figures(token_figures) if token_figures is not None else None

    def _figures(self, t: TokenFigures) -> QualityFigures:
        assert self._ref is not None
        return figures(t.kld, t.nll, self._ref.nll, t.same_top)

    async def measure_loaded(self, client: EngineLike, settings: LoadSettings,
                             cid: str | None = None) -> QualityFigures:
        """Figures of the model `client` has loaded with `settings` (the auto-tune's engine);
        `cid`, the candidate's store id, when the caller has it already."""
        ref = await self.prepare()
        path = settings.model_path
        cid = cid or self._candidate_id(path, settings)
        cached = self._stored(cid)
        if cached is not None:
            self.log.reused.append(path)
            return cached
        started = time.monotonic()
        try:
            answer = await client.kld(KldCommand(text=self.text, reference=self._packed))
        except EngineError as exc:
            if not self._ref_from_store:
                raise QualityError(str(exc)) from None
            # a stored reference the engine finds at odds with the model (its vocabulary, tokens,
            # chunk or length): damaged or stale, so it is run again before the model is blamed
            self.store.discard_reference(self.key)
            self._ref = None
            self.log.warnings.append(f"the stored reference did not fit ({exc}); it was run again")
            ref = await self.prepare()
            try:
                answer = await client.kld(KldCommand(text=self.text, reference=self._packed))
            except EngineError as exc2:
                raise QualityError(str(exc2)) from None
        try:
            t = TokenFigures(unpack(answer.kld, "f8", 1), unpack(answer.nll, "f8", 1),
                             unpack(answer.same_top, "u1", 1)).check(ref.positions)
        except (ArrayError, StoredDataError) as exc:
            raise QualityError(f"the engine's answer was damaged: {exc}") from None
        self.log.candidate_runs += 1
        self._keep(lambda: self.store.save_token_figures(cid, self.key, t))
        self.log.seconds += time.monotonic() - started
        return self._figures(t)

    async def measure_file(self, path: str | Path) -> QualityFigures:
        """Figures of `path`, loaded in a fresh engine with the base settings (f16 KV cache)."""
        await self.prepare()
        settings = _reference_settings(self.base, Path(path), self.chunk)
        cid = self._candidate_id(path, settings)
        cached = self._stored(cid)
        if cached is not None:
            self.log.reused.append(str(path))
            return cached
        client = self.client_factory()
        try:
            await self._load(client, settings)
            return await self.measure_loaded(client, settings, cid)
        except EngineError as exc:
            raise QualityError(f"{Path(path).name}: {exc}") from None
        finally:
            await client.stop()
