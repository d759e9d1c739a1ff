"""`vramdeck plan` and `vramdeck pull` as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.plan.hub_server import Repo


def _run(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_plan_a_70b_for_one_24gib_card_as_json(sparse_70b):
    out = _run("plan", str(sparse_70b), "--vram", "24GiB", "--ctx", "4096", "--kv", "q8_0",
               "--flash-attn", "on", "--types", "Q4_K_M,Q2_K,IQ2_XXS", "--min-tps", "5", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plans"][0]
    rows = {r["quant"]: r for r in plan["rows"]}
    assert set(rows) == {"Q4_K_M", "Q2_K", "IQ2_XXS"}
    assert rows["IQ2_XXS"]["all_on_gpu"] and not rows["Q2_K"]["all_on_gpu"]
    assert rows["IQ2_XXS"]["needs_imatrix"]
    assert rows["Q4_K_M"]["quality"]["published_ppl_increase"] == 0.1754
    assert "Q4_K_M" in plan["on_disk"]
    verdicts = {v["label"]: v["quant"] for v in plan["verdicts"]}
    assert verdicts["fully on the GPU"] == "IQ2_XXS"


def test_two_models_share_one_table(sparse_70b, tiny_llama):
    out = _run("plan", str(sparse_70b), str(tiny_llama), "--vram", "24GiB", "--types", "Q4_K_M,Q8_0")
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()
    assert table[2].startswith("model") or any(line.startswith("model") for line in table)
    assert sum("Q4_K_M" in line for line in table) >= 2


def test_bad_plan_arguments_name_themselves(sparse_70b):
    out = _run("plan", str(sparse_70b), "--vram", "24GiB", "--types", "Q9_Z")
    assert out.returncode == 2 and out.stderr.startswith("vramdeck plan: unknown quant type Q9_Z")
    out = _run("plan", "/no/such/file.gguf", "--vram", "24GiB")
    assert out.returncode == 1 and "vramdeck plan:" in out.stderr and "Traceback" not in out.stderr


def test_pull_lists_the_quants_when_asked_for_none(hub, tmp_path, tiny_llama):
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama, "tiny-Q8_0.gguf": tiny_llama})
    out = _run("pull", "test/tiny-GGUF", env={"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path)})
    assert out.returncode == 2 and "which one?" in out.stderr and "test/tiny-GGUF:Q8_0" in out.stderr


def test_plan_an_ollama_tag_from_the_local_store(tmp_path, tiny_llama, monkeypatch):
    from tui.plan.sources import SourceError, resolve

    store = tmp_path / "ollama"
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    manifest.parent.mkdir(parents=True)
    digest = "sha256-" + "1" * 64
    manifest.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                                 "digest": digest.replace("-", ":")}]}))
    (store / "blobs").mkdir()
    (store / "blobs" / digest).write_bytes(tiny_llama.read_bytes())
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    for tag in ("tiny", "tiny:latest"):
        source = resolve(tag, tmp_path / "scratch")
        assert source.on_disk == store / "blobs" / digest and source.info.n_layer == 2
    import pytest

    with pytest.raises(SourceError, match="Ollama has no absent:7b .*ollama pull absent:7b"):
        resolve("absent:7b", tmp_path / "scratch")


def test_the_no_gpu_plan_never_shows_a_gpu_figure_and_says_where_speeds_come_from(tiny_llama):
    """Issue 27: with no GPU and no --vram the plan predicted "tg 13870.5" from a default 700 GB/s
    GPU. Now only the CPU is predicted, every row says its basis, and the speeds line names the
    missing calibration (the tests' cache folder has none)."""
    out = _run("plan", str(tiny_llama), "--types", "Q8_0,Q4_K_M", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plans"][0]
    assert plan["speeds"]["calibrated"] is False
    for row in plan["rows"]:
        assert row["n_gpu_layers"] == 0 and row["gpu_bytes"] == []
        assert "GPU" not in row["bound"] and "GPU" not in row["speed"]["pp_bound"]
        assert row["speed"]["basis"] == "default" and row["speed"]["band"] == 0.5
    text = _run("plan", str(tiny_llama), "--types", "Q8_0,Q4_K_M", timeout=300).stdout
    assert "GPU" not in text.split("speeds:")[1].split("\n")[0]
    assert "vramdeck calibrate" in text


def test_plan_for_a_gpu_this_machine_lacks_says_assumed(tiny_llama):
    out = _run("plan", str(tiny_llama), "--types", "Q8_0", "--vram", "24GiB", "--gpu", "RTX 3090", "--json",
               timeout=300)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plans"][0]
    assert plan["rows"][0]["speed"]["basis"] == "assumed"
    assert "RTX 3090 (936 GB/s)" in plan["speeds"]["source"]
    bad = _run("plan", str(tiny_llama), "--vram", "24GiB", "--gpu", "Voodoo 2", timeout=60)
    assert bad.returncode == 2 and "not a GPU vramdeck knows" in bad.stderr


def test_measure_gives_the_quants_on_disk_their_own_quality(quant_ladder, tiny_llama):
    """KL divergence against the highest-precision file on disk (the F32 the ladder came from),
    with the perplexity too; in the table, each quant on disk says its KLD."""
    out = _run("plan", str(quant_ladder["Q8_0"]), "--vram", "24GiB", "--types", "Q8_0,Q2_K,IQ2_XXS",
               "--models-dir", str(quant_ladder["Q8_0"].parent), "--measure", "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)["plans"][0]
    measured, quality = plan["measured_perplexity"], plan["measured_quality"]
    assert set(measured) == set(quality) == {"Q8_0", "Q2_K"}, "the quants planned and on disk, no others"
    assert Path(plan["quality_reference"]) == tiny_llama.resolve()
    assert all(isinstance(v, float) and v > 1 for v in measured.values())
    assert measured["Q2_K"] > measured["Q8_0"]
    assert 0 < quality["Q8_0"]["kld_mean"] < quality["Q2_K"]["kld_mean"]
    table = _run("plan", str(quant_ladder["Q8_0"]), "--vram", "24GiB", "--types", "Q8_0,Q2_K",
                 "--models-dir", str(quant_ladder["Q8_0"].parent), "--measure", timeout=300)
    q2 = quality["Q2_K"]
    assert f"on disk, KLD {q2['kld_mean']:.4f} ± {q2['kld_mean_se']:.4f} here" in table.stdout, table.stdout


def test_fit_and_plan_agree_on_the_layers_and_fit_says_its_settings(sparse_70b):
    """Issue 30: fit said 45 layers and plan 44 for the same file: fit assumed flash attention on,
    plan and the app auto, and fit never said which."""
    env = {**os.environ}
    fit = subprocess.run([sys.executable, "-m", "tui", "fit", str(sparse_70b), "--vram", "24GiB", "--json"],
                         capture_output=True, text=True, timeout=300, env=env)
    plan = subprocess.run([sys.executable, "-m", "tui", "plan", str(sparse_70b), "--vram", "24GiB",
                           "--types", "Q4_K_M", "--json"], capture_output=True, text=True, timeout=300, env=env)
    fitted = json.loads(fit.stdout)
    row = json.loads(plan.stdout)["plans"][0]["rows"][0]
    assert fitted["settings"]["flash_attn"] == row["settings"]["flash_attn"] == "auto"
    assert fitted["n_gpu_layers"] == row["n_gpu_layers"], (fitted["n_gpu_layers"], row["n_gpu_layers"])
    text = subprocess.run([sys.executable, "-m", "tui", "fit", str(sparse_70b), "--vram", "24GiB"],
                          capture_output=True, text=True, timeout=300, env=env).stdout
    assert "settings: context 4,096, KV f16/f16, flash attention auto, n_ubatch 512" in text


def test_pull_progress_fits_an_80_column_terminal_and_is_plain_lines_otherwise():
    """Issue 30: the progress line was longer than 80 columns, so every update began a new line."""
    import io
    import time as clock

    from tui.commands.pull import ProgressLine
    from tui.plan.hub import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    name = "Meta-Llama-3.1-70B-Instruct-GGUF/Meta-Llama-3.1-70B-Instruct-IQ2_XXS-00001-of-00002.gguf"
    tty = Tty()
    line = ProgressLine(tty, columns=80)
    p = Progress(name, 7 * 2**30, 19 * 2**30, clock.monotonic() - 100, 0)
    line(p)
    shown = tty.getvalue().removeprefix("\r").removesuffix("\x1b[K")
    assert len(shown) <= 79 and shown.split(":")[0].endswith("00001-of-00002.gguf") and "/s," in shown
    plain = io.StringIO()
    ProgressLine(plain)(Progress(name, 2**30, 2**30, clock.monotonic() - 1, 0))
    assert plain.getvalue().endswith("\n") and "\r" not in plain.getvalue()


def test_the_plan_keeps_the_type_of_the_file_you_have(demo_model):
    """Issue 30: the demo's own Q4_1 was left out of its plan (Q4_1 is not one of the 23 types)."""
    out = _run("plan", str(demo_model), "--types", "Q8_0", "--formula", "--json")
    rows = {r["quant"]: r for r in json.loads(out.stdout)["plans"][0]["rows"]}
    assert set(rows) == {"Q8_0", "Q4_1"}
    assert rows["Q4_1"]["file_bytes"] == demo_model.stat().st_size or abs(
        rows["Q4_1"]["file_bytes"] - demo_model.stat().st_size) < 2 << 20


def test_an_ollama_tag_without_ollama_says_its_store_was_not_found(tmp_path):
    out = _run("plan", "llama3.1:70b", "--vram", "24GiB", env={"HOME": str(tmp_path),
                                                                "OLLAMA_MODELS": str(tmp_path / "none")})
    assert out.returncode == 1 and "Ollama's model store was not found" in out.stderr, out.stderr
    (tmp_path / "none").mkdir()
    out = _run("plan", "llama3.1:70b", "--vram", "24GiB", env={"HOME": str(tmp_path),
                                                                "OLLAMA_MODELS": str(tmp_path / "none")})
    assert out.returncode == 1 and "ollama pull llama3.1:70b" in out.stderr, out.stderr
