"""Plan and pull against a local Hugging Face endpoint (HF_ENDPOINT on 127.0.0.1), through the
real huggingface_hub client: header ranges only, resumable and verified downloads, and a clear
sentence for every way a repo or a network can go wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plan.hub_server import COMMIT, TOKEN, Repo
from tui.engine.settings import LoadSettings
from tui.fit.budget import MemoryBudget
from tui.models.discovery import Location, scan
from tui.models.synthetic import LLAMA31_70B, write_sparse_llama
from tui.plan import hub as hub_api
from tui.plan.hub import HubError, list_repo, pull
from tui.plan.model_plan import make_plan
from tui.plan.sources import SourceError, resolve
from tui.speed.model import SpeedModel

GiB = 1024**3


@pytest.fixture(scope="module")
def sparse_q2k(tmp_path_factory):
    return write_sparse_llama(tmp_path_factory.mktemp("q2k") / "Llama-3.1-70B-Q2_K.gguf", LLAMA31_70B, "Q2_K")


def _run(*args, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_plan_from_a_remote_repo_reads_only_header_ranges(hub, tmp_path, sparse_70b, sparse_q2k):
    hub.state.repos["bartowski/Llama-3.1-70B-GGUF"] = Repo(
        files={"Llama-3.1-70B-Q4_K_M.gguf": sparse_70b, "Llama-3.1-70B-Q2_K.gguf": sparse_q2k},
        sha256={"Llama-3.1-70B-Q4_K_M.gguf": "a" * 64, "Llama-3.1-70B-Q2_K.gguf": "b" * 64})
    source = resolve("bartowski/Llama-3.1-70B-GGUF", tmp_path)
    assert source.remote is not None and source.info.n_layer == 80
    assert {m.quant for m in source.remote.models} == {"Q4_K_M", "Q2_K"}
    served = sum(hub.state.sent.values())
    assert served == source.header_bytes_read < 16 * 2**20, "a few MB of header, never a file"
    assert not hub.state.full_gets and hub.state.ranges
    plan = make_plan(source, LoadSettings(model_path="", n_ctx=4096, type_k="q8_0", type_v="q8_0",
                                          flash_attn="on"),
                     MemoryBudget(gpus=(24 * GiB,), overheads=(768 * 2**20,), host=256 * GiB),
                     (SpeedModel(), "default rates"), quants=("Q2_K", "IQ2_XXS"), use_dry_run=False)
    by = {r.quant: r for r in plan.rows}
    assert by["IQ2_XXS"].all_on_gpu and not by["Q2_K"].all_on_gpu
    assert plan.in_repo["Q2_K"] == sparse_q2k.stat().st_size


def test_pull_resumes_after_the_client_is_killed(hub, tmp_path, tiny_llama):
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    hub.state.delay_per_chunk = 0.05  # 64 KiB a chunk: a few seconds for the whole file
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "pull", "test/tiny-GGUF:F32"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    blobs = tmp_path / "hf-cache" / "models--test--tiny-GGUF" / "blobs"
    deadline = time.monotonic() + 60
    partial = None
    while time.monotonic() < deadline:
        found = list(blobs.glob("*.incomplete")) if blobs.exists() else []
        if found and found[0].stat().st_size > 256 * 1024:
            partial = found[0]
            break
        time.sleep(0.02)
    assert partial is not None, "the download never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    kept = partial.stat().st_size
    assert 0 < kept < tiny_llama.stat().st_size
    listed = scan([Location(tmp_path / "hf-cache", "huggingface")])
    assert not listed.models, "a partial download is never shown as a model"
    hub.state.delay_per_chunk = 0.0
    done = _run("pull", "test/tiny-GGUF:F32", env_extra=env)
    assert done.returncode == 0, done.stderr
    assert any(r == f"bytes={kept}-" for _, r in hub.state.ranges), hub.state.ranges
    path = Path(done.stdout.strip())
    assert path.read_bytes() == tiny_llama.read_bytes()
    assert path.parent.name == COMMIT and path.is_symlink()
    models = scan([Location(tmp_path / "hf-cache", "huggingface")]).models
    assert [m.name for m in models] == ["test/tiny-GGUF:tiny-F32.gguf"] and models[0].ok


def test_a_checksum_mismatch_is_refused(hub, tmp_path, tiny_llama):
    hub.state.repos["test/bad-sha"] = Repo(files={"tiny-F32.gguf": tiny_llama},
                                           sha256={"tiny-F32.gguf": "0" * 64})
    repo = list_repo("test/bad-sha")
    with pytest.raises(HubError, match="does not match the SHA-256"):
        pull(repo, repo.models[0])
    blobs = tmp_path / "hf-cache" / "models--test--bad-sha" / "blobs"
    assert not list(blobs.iterdir()), "nothing half-written that looks complete"
    assert not (tmp_path / "hf-cache" / "models--test--bad-sha" / "snapshots").exists()


def test_a_gated_repo_says_how_to_log_in(hub, tmp_path, tiny_llama, monkeypatch):
    hub.state.repos["meta/gated-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama}, gated=True)
    with pytest.raises(HubError, match="HF_TOKEN"):
        list_repo("meta/gated-GGUF")
    out = _run("pull", "meta/gated-GGUF:F32", env_extra={"HF_ENDPOINT": hub.url})
    assert out.returncode == 1 and "hf auth login" in out.stderr and "Traceback" not in out.stderr
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert list_repo("meta/gated-GGUF").models


def test_not_enough_disk_is_said_before_a_byte_is_fetched(hub, tmp_path, tiny_llama, monkeypatch):
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF")
    monkeypatch.setattr(hub_api, "free_bytes", lambda folder: 1000)
    with pytest.raises(HubError, match="free some space"):
        pull(repo, repo.models[0])
    assert not hub.state.sent


@pytest.mark.parametrize("repo_id, files, words", [
    ("nobody/missing", None, "No repo nobody/missing"),
    ("test/no-gguf", {"README.md": "readme"}, "no GGUF file and no config.json"),
    ("test/qwen", {"config.json": {"architectures": ["Qwen2ForCausalLM"]}}, "Qwen2ForCausalLM"),
    ("test/cut-GGUF", {"x-Q4_K_M.gguf": "cut"}, "does not fit the file|ends early"),
])
def test_bad_sources_get_a_sentence(hub, tmp_path, tiny_llama, repo_id, files, words):
    if files is not None:
        on_disk = {}
        for name, content in files.items():
            path = tmp_path / "served" / name
            path.parent.mkdir(exist_ok=True)
            if content == "cut":
                path.write_bytes(tiny_llama.read_bytes()[:1000])
            elif isinstance(content, dict):
                path.write_text(json.dumps(content))
            else:
                path.write_text(content)
            on_disk[name] = path
        hub.state.repos[repo_id] = Repo(files=on_disk)
    with pytest.raises((HubError, SourceError), match=words):
        resolve(repo_id, tmp_path / "scratch")


def test_a_llama_repo_not_yet_converted_is_planned_from_its_config(hub, tmp_path):
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
              "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
              "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    hub.state.repos["meta/Llama-3.1-8B"] = Repo(files={"config.json": tmp_path / "config.json"})
    source = resolve("meta/Llama-3.1-8B", tmp_path / "scratch")
    assert source.quant == "F16" and source.info.n_layer == 32 and "config.json" in source.note
    assert 7.9e9 < source.info.n_params < 8.1e9


def test_an_unreachable_endpoint_is_a_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    out = _run("plan", "some/repo", "--vram", "24GiB", env_extra={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert out.returncode == 1 and "Cannot reach" in out.stderr and "Traceback" not in out.stderr


def test_a_header_larger_than_the_first_range_is_read_in_more_ranges(hub, tmp_path, sparse_q2k,
                                                                     monkeypatch):
    """Real 70B headers are ~8 MB (tokens and merges): a count that the bytes read so far cannot
    hold is not damage while the file is larger; the next range is asked for."""
    monkeypatch.setattr(hub_api, "HEADER_FIRST_READ", 64 * 1024)
    hub.state.repos["test/big-header-GGUF"] = Repo(files={"m-Q2_K.gguf": sparse_q2k},
                                                   sha256={"m-Q2_K.gguf": "c" * 64})
    source = resolve("test/big-header-GGUF", tmp_path)
    assert source.info.n_layer == 80 and len(hub.state.ranges) >= 2


def test_a_disk_that_fills_up_mid_download_keeps_the_partial_and_says_so(hub, tmp_path, tiny_llama,
                                                                         monkeypatch):
    """ENOSPC halfway: a sentence, the partial kept under .incomplete (never a .gguf), and the next
    pull resumes from it."""
    import builtins
    import errno

    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF")
    real_open = builtins.open

    class FillsUp:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written > 300_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def full_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return FillsUp(f) if str(path).endswith(".incomplete") else f

    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(HubError, match="disk filled up.*partial file is kept"):
        pull(repo, repo.models[0])
    monkeypatch.setattr(builtins, "open", real_open)
    blobs = tmp_path / "hf-cache" / "models--test--tiny-GGUF" / "blobs"
    partial = list(blobs.glob("*.incomplete"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < tiny_llama.stat().st_size
    assert not list(blobs.glob("*.gguf")) and not (blobs.parent / "snapshots").exists()
    path = pull(repo, repo.models[0])
    assert path.read_bytes() == tiny_llama.read_bytes()
