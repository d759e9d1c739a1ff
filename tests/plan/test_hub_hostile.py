"""A hostile hub: listings whose names, revisions and SHA-256 values are paths, answers that never
come or never end, bodies longer than asked for, and values of the wrong type. For each: a
sentence (HubError or SourceError naming the field), nothing created, changed or deleted outside
the cache, memory bounded, and every wait bounded by the (short, settable) timeouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from tests.plan.hub_server import COMMIT, Repo
from tui.plan import hub as hub_api
from tui.plan.hub import HubError, HubTimeouts, list_repo, pull
from tui.plan.sources import SourceError, resolve


@pytest.fixture
def short_timeouts(monkeypatch):
    monkeypatch.setattr(hub_api, "_timeouts", HubTimeouts(connect_s=0.5, read_s=0.5, stall_s=1.0))


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under `root` with its size, mtime and link target: compared before and after."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p)] = (st.st_size, st.st_mtime_ns, os.readlink(p) if p.is_symlink() else "")
    return out


@pytest.fixture
def outside(tmp_path):
    """A folder beside the cache with a file in it, as the victim of a path from the hub; the test
    checks that everything outside the cache is as it was."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_text("precious")
    (victim / "file.incomplete").write_text("also precious")
    return victim


def unchanged_outside_cache(tmp_path: Path, before: dict) -> None:
    cache = str(tmp_path / "hf-cache")
    now = {k: v for k, v in tree(tmp_path).items() if not k.startswith(cache)}
    was = {k: v for k, v in before.items() if not k.startswith(cache)}
    assert now == was, "something outside the cache was created, changed or deleted"


def listing(siblings, sha=COMMIT):
    return {"id": "evil/repo", "modelId": "evil/repo", "sha": sha, "private": False, "siblings": siblings}


def sibling(name="m-Q4_K_M.gguf", size=1000, sha256="a" * 64):
    entry: dict = {"rfilename": name, "size": size}
    if sha256 is not None:
        entry["lfs"] = {"sha256": sha256, "size": size if isinstance(size, int) else 1, "pointerSize": 134}
    return entry


VICTIM = "@VICTIM@"


@pytest.mark.parametrize("raw, field", [
    (listing([sibling(name="../../victim/evil.gguf")]), "rfilename"),
    (listing([sibling(name=VICTIM + "/evil.gguf")]), "rfilename"),
    (listing([sibling(name="a/../../evil.gguf")]), "rfilename"),
    (listing([sibling()], sha="../../victim"), "sha"),
    (listing([sibling()], sha=VICTIM), "sha"),
    (listing([sibling(sha256=VICTIM + "/file")]), "sha256"),
    (listing([sibling(sha256="/etc/hostname")]), "sha256"),
    (listing([sibling(name="a" * 300 + ".gguf")]), "longer than 255"),
    (listing([sibling(name="m\x00-Q4_K_M.gguf")]), r"U\+0000"),
    (listing([sibling(name="m\u202e-Q4_K_M.gguf")]), r"U\+202E"),
    (listing([sibling(size="abc")]), "size"),
    (listing([sibling(size=-5)]), "size"),
    (listing([sibling(sha256=5)]), "sha256"),
    (listing([sibling(name=5)]), "rfilename"),
    (listing([sibling(name=["x"])]), "rfilename"),
    (listing([sibling(), sibling()]), "listed twice"),
    (listing([sibling(size=2**60)]), "out of range"),
])
def test_a_listing_value_that_would_leave_the_cache_is_refused_by_name(hub, tmp_path, outside, raw, field):
    text = json.dumps(raw).replace(VICTIM, str(outside))
    hub.state.raw_listings["evil/repo"] = json.loads(text)
    before = tree(tmp_path)
    with pytest.raises(HubError, match=field):
        list_repo("evil/repo")
    unchanged_outside_cache(tmp_path, before)


@pytest.mark.parametrize("text, words", [
    ('{"id": "evil/repo", "sha": "%s", "siblings": [{"rfilename": "m.gguf", "size": 1e400}]}' % COMMIT,
     "size"),
    ('{"id": "evil/repo", "siblings": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deep|listing"),
    ("[1, 2, 3]", "not a repo listing"),
])
def test_a_listing_that_is_not_one_is_a_sentence(hub, text, words):
    hub.state.raw_listings["evil/repo"] = text.encode()  # raw: json.dumps cannot write 1e400
    with pytest.raises(HubError, match=words):
        list_repo("evil/repo")


def test_pull_with_a_path_for_a_sha256_leaves_the_victim_alone_and_says_why(hub, tmp_path, outside):
    """The report's case: a sha256 of /x/victim made pull append to /x/victim.incomplete, then
    delete it. Through the real command: exit 1, a sentence, no traceback, nothing touched."""
    hub.state.raw_listings["evil/repo"] = listing([sibling(sha256=str(outside / "file"))])
    before = tree(tmp_path)
    out = subprocess.run([sys.executable, "-m", "tui", "pull", "evil/repo:Q4_K_M"], capture_output=True,
                         text=True, timeout=120,
                         env={**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache")})
    assert out.returncode == 1 and "sha256" in out.stderr and "Traceback" not in out.stderr, out.stderr
    unchanged_outside_cache(tmp_path, before)
    assert (outside / "file.incomplete").read_text() == "also precious"


def test_a_cache_folder_that_links_outside_is_not_followed(hub, tmp_path, tiny_llama, outside):
    """A snapshots folder someone made a link out of the cache: pull refuses to write through it."""
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF")
    folder = hub_api.repo_folder("test/tiny-GGUF")
    folder.mkdir(parents=True)
    (folder / "snapshots").symlink_to(outside)
    before = tree(tmp_path)
    with pytest.raises(HubError, match="outside the cache"):
        pull(repo, repo.models[0])
    unchanged_outside_cache(tmp_path, before)


def test_a_split_model_missing_parts_is_not_reported_as_pulled(hub, tmp_path, tiny_llama):
    hub.state.repos["test/split-GGUF"] = Repo(files={"m-Q4_K_M-00001-of-00003.gguf": tiny_llama})
    repo = list_repo("test/split-GGUF")
    with pytest.raises(HubError, match="3 parts.*parts 2, 3"):
        pull(repo, repo.models[0])
    assert not hub.state.sent, "nothing downloaded"


# ------------------------------------------------------------------ answers that never come or end


def test_a_listing_that_never_answers_times_out_with_the_endpoint_named(hub, short_timeouts):
    hub.state.behaviour["/api"] = "stall_headers"
    with pytest.raises(HubError, match=f"{hub.url}.*did not answer within 0.5 s"):
        list_repo("test/anything")


def test_a_range_read_that_never_answers_times_out(hub, tmp_path, sparse_70b, short_timeouts):
    hub.state.repos["test/stall-GGUF"] = Repo(files={"m-Q4_K_M.gguf": sparse_70b},
                                              sha256={"m-Q4_K_M.gguf": "a" * 64})
    hub.state.behaviour["m-Q4_K_M.gguf"] = "stall_headers"
    with pytest.raises(HubError, match="did not answer within"):
        resolve("test/stall-GGUF", tmp_path / "scratch")


@pytest.mark.parametrize("how", ["stall_body", "trickle"])
def test_a_download_that_stops_or_trickles_ends_with_the_partial_kept(hub, tmp_path, tiny_llama,
                                                                        short_timeouts, how):
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF")
    hub.state.behaviour["tiny-F32.gguf"] = how
    with pytest.raises(HubError, match="stopped sending.*partial file is kept"):
        pull(repo, repo.models[0], retries=1)
    partial = list((hub_api.repo_folder("test/tiny-GGUF") / "blobs").glob("*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size < tiny_llama.stat().st_size
    hub.state.behaviour.clear()
    assert pull(repo, repo.models[0]).read_bytes() == tiny_llama.read_bytes(), "and it resumes"


@pytest.mark.parametrize("command", ["pull", "plan"])
def test_ctrl_c_while_the_hub_is_silent_stops_with_a_line(hub, tmp_path, command):
    """Ctrl+C during the listing (not only the download): exit 130, a sentence, no traceback."""
    hub.state.behaviour["/api"] = "stall_headers"
    args = ["pull", "test/x-GGUF:Q4_K_M"] if command == "pull" else ["plan", "test/x-GGUF", "--vram", "24GiB"]
    proc = subprocess.Popen([sys.executable, "-m", "tui", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_ENDPOINT": hub.url,
                                            "HF_HUB_CACHE": str(tmp_path / "hf-cache")})
    deadline = time.monotonic() + 60
    while hub.state.api_calls == 0 and time.monotonic() < deadline:  # until the listing is asked for
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "stopped" in err and "Traceback" not in err, err


# ------------------------------------------------------------------ byte counts


def test_a_range_answer_longer_than_asked_is_refused_with_memory_bounded(hub, tmp_path, sparse_70b):
    hub.state.repos["test/flood-GGUF"] = Repo(files={"m-Q4_K_M.gguf": sparse_70b},
                                              sha256={"m-Q4_K_M.gguf": "a" * 64})
    hub.state.behaviour["m-Q4_K_M.gguf"] = "flood"
    hub.state.flood_bytes = 64 << 20
    tracemalloc.start()
    try:
        with pytest.raises(HubError, match="more than the"):
            resolve("test/flood-GGUF", tmp_path / "scratch")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB held for a 4 MiB range"


def test_a_range_of_noise_is_a_sentence_about_the_file(hub, tmp_path, sparse_70b):
    hub.state.repos["test/noise-GGUF"] = Repo(files={"m-Q4_K_M.gguf": sparse_70b},
                                              sha256={"m-Q4_K_M.gguf": "a" * 64})
    hub.state.behaviour["m-Q4_K_M.gguf"] = "garbage"
    with pytest.raises(HubError, match="m-Q4_K_M.gguf"):
        resolve("test/noise-GGUF", tmp_path / "scratch")


def test_a_download_longer_than_listed_stops_at_the_listed_size(hub, tmp_path, tiny_llama):
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF")
    listed = repo.models[0].size
    hub.state.behaviour["tiny-F32.gguf"] = "flood"
    hub.state.flood_bytes = listed + (32 << 20)
    with pytest.raises(HubError, match="more of tiny-F32.gguf than"):
        pull(repo, repo.models[0])
    blobs = hub_api.repo_folder("test/tiny-GGUF") / "blobs"
    written = sum(p.stat().st_size for p in blobs.iterdir())
    assert written == listed, "never a byte past the listed size on disk"


# ------------------------------------------------------------------ config.json


CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
          "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
          "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0}


@pytest.mark.parametrize("text, field", [
    (json.dumps([CONFIG]), "not a table"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    (json.dumps({**CONFIG, "architectures": {"a": 1}}), "architectures"),
    (json.dumps({**CONFIG, "architectures": 7}), "architectures"),
    (json.dumps({**CONFIG, "max_position_embeddings": 1e30}), "max_position_embeddings"),
    (json.dumps({**CONFIG, "intermediate_size": 1e12}), "intermediate_size"),
    (json.dumps({**CONFIG, "num_attention_heads": 0}), "num_attention_heads"),
    (json.dumps({**CONFIG, "hidden_size": "4096"}), "hidden_size"),
    (json.dumps(CONFIG).replace("500000.0", "1e400"), "rope_theta"),
    (json.dumps({**CONFIG, "vocab_size": None}), "vocab_size"),
])
def test_hostile_config_values_name_the_field(hub, tmp_path, text, field):
    (tmp_path / "config.json").write_text(text)
    hub.state.repos["meta/odd"] = Repo(files={"config.json": tmp_path / "config.json"})
    with pytest.raises(SourceError, match=field):
        resolve("meta/odd", tmp_path / "scratch")


def test_pull_records_the_branch_it_fetched_not_always_main(hub, tmp_path, tiny_llama):
    """Issue 26: pull wrote refs/main whatever revision it had fetched."""
    hub.state.repos["test/tiny-GGUF"] = Repo(files={"tiny-F32.gguf": tiny_llama})
    repo = list_repo("test/tiny-GGUF", revision="v2")
    pull(repo, repo.models[0])
    refs = hub_api.repo_folder("test/tiny-GGUF") / "refs"
    assert (refs / "v2").read_text() == COMMIT and not (refs / "main").exists()
