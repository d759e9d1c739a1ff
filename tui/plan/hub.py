"""A Hugging Face repo as the plan and `pull` see it, through the real huggingface_hub client.

It honours HF_ENDPOINT and HF_TOKEN (or a logged-in token) as the client does. Listing asks the
repo's file metadata (sizes, LFS SHA-256); a header is read with HTTP range requests only, a few
MB, never the whole file. Downloads go into the Hugging Face cache (where discovery looks), each
into `blobs/<sha256>.incomplete`, resumed from its size with a Range request after Ctrl+C, a
kill or a lost connection, verified against the listed SHA-256, then moved into place and linked
from `snapshots/<commit>/`: a partial file never ends in .gguf, so it is never shown as a model.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui.files import private_dir
from tui.models.gguf_info import GgufError, GgufHeader, parse_header_bytes

_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)
HEADER_FIRST_READ = 4 << 20
HEADER_MAX_READ = 128 << 20


class HubError(Exception):
    """Words for the user: what went wrong with the repo or the download, and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None
    """The LFS object's SHA-256 (None for a small file kept in git)."""


@dataclass(frozen=True)
class RemoteModel:
    """One model of a repo: a GGUF file, or all parts of a split one."""

    name: str
    quant: str
    parts: tuple[RemoteFile, ...]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


@dataclass(frozen=True)
class RemoteRepo:
    repo_id: str
    revision: str
    """The commit the listing is of."""
    models: tuple[RemoteModel, ...]
    files: tuple[RemoteFile, ...]


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _explain(exc: Exception, repo_id: str) -> HubError:
    """huggingface_hub's and the transport's errors, in words."""
    from huggingface_hub import errors

    name = type(exc).__name__
    if isinstance(exc, errors.GatedRepoError) or "401" in str(exc) or "403" in str(exc):
        return HubError(f"{repo_id} needs you to be logged in with access to it: accept its terms "
                        f"on the Hub, then `hf auth login` or set HF_TOKEN.")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return HubError(f"No repo {repo_id} on {endpoint()} (or it is private: log in with "
                        f"`hf auth login` or set HF_TOKEN).")
    if isinstance(exc, errors.RevisionNotFoundError):
        return HubError(f"{repo_id} has no such revision.")
    if isinstance(exc, errors.EntryNotFoundError):
        return HubError(f"{repo_id} has no such file.")
    if isinstance(exc, errors.HfHubHTTPError):
        return HubError(f"{endpoint()} answered an error for {repo_id}: {str(exc).splitlines()[0]}")
    if "Connect" in name or "Timeout" in name or isinstance(exc, OSError):
        return HubError(f"Cannot reach {endpoint()} ({name}): check the network, or HF_ENDPOINT.")
    return HubError(f"{repo_id}: {name}: {exc}")


def quant_of(filename: str) -> str:
    """The quant a file's name says ("Meta-Llama-3.1-70B-Instruct-Q4_K_M.gguf" -> "Q4_K_M")."""
    found = _QUANT.findall(Path(filename).name.removesuffix(".gguf"))
    return found[-1].upper() if found else "?"


def group_models(files: list[RemoteFile]) -> tuple[RemoteModel, ...]:
    """GGUF files as models: split parts together, first part first."""
    singles: list[RemoteModel] = []
    splits: dict[tuple[str, str], list[RemoteFile]] = {}
    for f in files:
        if not f.path.lower().endswith(".gguf"):
            continue
        m = _SPLIT.match(Path(f.path).name)
        if m:
            splits.setdefault((str(Path(f.path).parent), m.group("stem")), []).append(f)
        else:
            singles.append(RemoteModel(f.path, quant_of(f.path), (f,)))
    for (_, stem), parts in splits.items():
        ordered = tuple(sorted(parts, key=lambda p: p.path))
        singles.append(RemoteModel(ordered[0].path, quant_of(stem), ordered))
    return tuple(sorted(singles, key=lambda m: m.name))


def list_repo(repo_id: str, revision: str | None = None) -> RemoteRepo:
    """Every file of the repo with its size and SHA-256, and its GGUF models. HubError."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint()).model_info(repo_id, revision=revision,
                                                     files_metadata=True, token=_token())
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence
        raise _explain(exc, repo_id) from None
    files = []
    for s in info.siblings or []:
        lfs = getattr(s, "lfs", None)
        sha = getattr(lfs, "sha256", None) if lfs is not None else None
        files.append(RemoteFile(s.rfilename, int(s.size or (lfs.size if lfs else 0) or 0), sha))
    return RemoteRepo(repo_id, info.sha or (revision or "main"), group_models(files), tuple(files))


def _url(repo_id: str, filename: str, revision: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return {**build_hf_headers(token=_token()), **(extra or {})}


def read_range(repo_id: str, filename: str, revision: str, start: int, end: int) -> bytes:
    """Bytes start..end (inclusive) of a file. HubError when the server will not give a range."""
    from huggingface_hub.utils import get_session

    try:
        r = get_session().get(_url(repo_id, filename, revision), follow_redirects=True,
                              headers=_headers({"Range": f"bytes={start}-{end}"}))
    except Exception as exc:  # noqa: BLE001
        raise _explain(exc, repo_id) from None
    if r.status_code in (401, 403):
        raise HubError(f"{repo_id} needs you to be logged in with access to it: accept its terms "
                       f"on the Hub, then `hf auth login` or set HF_TOKEN.")
    if r.status_code != 206:
        raise HubError(f"{endpoint()} did not answer a range request for {filename} "
                       f"(HTTP {r.status_code}); vramdeck reads headers only, never whole files.")
    return r.content


def read_remote_header(repo_id: str, file: RemoteFile, revision: str) -> tuple[GgufHeader, bytes, int]:
    """A remote GGUF's header, read in growing ranges until it parses (a few MB); with its raw
    bytes (for a sparse local copy) and how many bytes were fetched. HubError when it does not
    parse within HEADER_MAX_READ."""
    size = HEADER_FIRST_READ
    data = b""
    while True:
        want = min(size, file.size)
        data += read_range(repo_id, file.path, revision, len(data), want - 1)
        try:
            header = parse_header_bytes(data, file.size, path=file.path)
            return header, data[:header.data_offset], len(data)
        except GgufError as exc:
            if "ends early" not in str(exc) or want >= file.size or want >= HEADER_MAX_READ:
                raise HubError(f"{file.path}: {exc}") from None
        size *= 4


# ------------------------------------------------------------------ download


@dataclass
class Progress:
    filename: str
    done: int
    total: int
    started: float
    resumed_from: int = 0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.done - self.resumed_from) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


def cache_dir() -> Path:
    env = os.environ
    hf_home = Path(env.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return Path(env.get("HF_HUB_CACHE", env.get("HUGGINGFACE_HUB_CACHE", hf_home / "hub")))


def repo_folder(repo_id: str) -> Path:
    return cache_dir() / ("models--" + repo_id.replace("/", "--"))


def free_bytes(folder: Path) -> int:
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def pull(repo: RemoteRepo, model: RemoteModel, on_progress: Callable[[Progress], None] = lambda p: None,
         retries: int = 3, chunk: int = 1 << 20) -> Path:
    """Download every part of `model` into the cache; the path of its first part. HubError."""
    folder = repo_folder(repo.repo_id)
    blobs = private_dir(folder / "blobs")
    missing = 0
    for part in model.parts:
        if part.sha256 is None:
            raise HubError(f"{part.path} lists no SHA-256 (not an LFS file): it cannot be verified.")
        blob = blobs / part.sha256
        if not blob.exists():
            partial = blobs / f"{part.sha256}.incomplete"
            missing += part.size - (partial.stat().st_size if partial.exists() else 0)
    free = free_bytes(blobs)
    if missing > free:
        raise HubError(f"{model.name} needs {missing / 2**30:.1f} GiB more and {blobs} has "
                       f"{free / 2**30:.1f} GiB free: free some space first (nothing was downloaded).")
    for part in model.parts:
        _download(repo, part, blobs, on_progress, retries, chunk)
        link = folder / "snapshots" / repo.revision / part.path
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.relpath(blobs / str(part.sha256), link.parent))
    refs = private_dir(folder / "refs")
    (refs / "main").write_text(repo.revision)
    return folder / "snapshots" / repo.revision / model.parts[0].path


def _download(repo: RemoteRepo, part: RemoteFile, blobs: Path,
              on_progress: Callable[[Progress], None], retries: int, chunk: int) -> None:
    from huggingface_hub.utils import get_session

    blob = blobs / str(part.sha256)
    if blob.exists():
        return
    partial = blobs / f"{part.sha256}.incomplete"
    attempt = 0
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        progress = Progress(part.path, have, part.size, time.monotonic(), have)
        if have < part.size:
            try:
                with get_session().stream("GET", _url(repo.repo_id, part.path, repo.revision),
                                          follow_redirects=True,
                                          headers=_headers({"Range": f"bytes={have}-"})) as r:
                    if r.status_code in (401, 403):
                        raise HubError(f"{repo.repo_id} needs you to be logged in with access to "
                                       "it: `hf auth login` or set HF_TOKEN.")
                    if r.status_code not in (200, 206):
                        raise HubError(f"{endpoint()} answered HTTP {r.status_code} for {part.path}")
                    mode = "ab" if r.status_code == 206 else "wb"  # 200: the server ignored Range
                    if mode == "wb":
                        progress.done = progress.resumed_from = 0
                    with open(partial, mode) as f:
                        os.fchmod(f.fileno(), 0o600)
                        for data in r.iter_bytes(chunk):
                            f.write(data)
                            progress.done += len(data)
                            on_progress(progress)
            except HubError:
                raise
            except OSError as exc:
                if getattr(exc, "errno", None) == 28:  # ENOSPC
                    raise HubError(f"The disk filled up while downloading {part.path}: the partial "
                                   f"file is kept ({partial}); free space and pull again.") from None
                attempt += 1
                if attempt > retries:
                    raise _explain(exc, repo.repo_id) from None
                time.sleep(min(2.0 * attempt, 5.0))
                continue
            except Exception as exc:  # noqa: BLE001 - a lost connection: resume from what we have
                attempt += 1
                if attempt > retries:
                    raise HubError(f"The connection kept breaking while downloading {part.path}; "
                                   f"the partial file is kept: pull again to resume. ({exc})") from None
                time.sleep(min(2.0 * attempt, 5.0))
                continue
        size = partial.stat().st_size
        if size != part.size:
            if size > part.size:
                partial.unlink()
                raise HubError(f"{part.path} came out larger than listed ({size:,} > "
                               f"{part.size:,} bytes): deleted; pull again.")
            attempt += 1
            if attempt > retries:
                raise HubError(f"{part.path} stopped at {size:,} of {part.size:,} bytes; the partial "
                               "file is kept: pull again to resume.")
            continue
        digest = _sha256(partial)
        if digest != part.sha256:
            partial.unlink()
            raise HubError(f"{part.path} does not match the SHA-256 the hub lists ({digest[:12]}… "
                           f"instead of {str(part.sha256)[:12]}…): deleted; pull again.")
        os.replace(partial, blob)
        return


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(8 << 20):
            h.update(data)
    return h.hexdigest()
