"""`vramdeck plan` and `vramdeck pull` as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
