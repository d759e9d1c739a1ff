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
from tui.models.discovery import hf_cache_dir
from tui.models.gguf_info import GgufError, GgufHeader, parse_header_bytes
from tui.plan.hub_values import (
    HubValueError,
    checked_repo_path,
    checked_revision,
    checked_sha256,
    checked_size,
    inside,
)

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)
HEADER_FIRST_READ = 4 << 20
HEADER_MAX_READ = 128 << 20


class HubError(Exception):
    """Words for the user: what went wrong with the repo or the download, and what to do."""


class PullStopped(BaseException):
    """Raised by a pull's progress callback to stop it (Esc in the Plan screen): the partial
    download is kept for the next pull to resume. A BaseException, so the retry loop, which
    resumes after any lost connection, lets it through."""


@dataclass(frozen=True)
class HubTimeouts:
    """How long any one step with the hub may wait. A server that accepts the connection and
    never answers, or stops in the middle of a body, must not hang `plan` or `pull`."""

    connect_s: float = 10.0
    read_s: float = 60.0
    """Longest wait for the next bytes of an answer."""
    stall_s: float = 120.0
    """A download that brings fewer than STALL_BYTES in this long has stalled (a trickle that
    keeps each read under read_s is caught here)."""


STALL_BYTES = 64 << 10
_timeouts: HubTimeouts | None = None


def timeouts() -> HubTimeouts:
    """The timeouts in force: set_timeouts(), else VRAMDECK_HUB_TIMEOUT (seconds, for connect
    and read) and VRAMDECK_HUB_STALL, else the defaults."""
    if _timeouts is not None:
        return _timeouts
    base = HubTimeouts()
    try:
        t = float(os.environ.get("VRAMDECK_HUB_TIMEOUT", "") or 0)
        stall = float(os.environ.get("VRAMDECK_HUB_STALL", "") or 0)
    except ValueError:
        return base
    if t > 0:
        base = _for_read(t)
    if stall > 0:
        base = HubTimeouts(base.connect_s, base.read_s, stall)
    return base


def set_timeouts(read_s: float | None = None) -> None:
    """`--timeout S`: connect and read timeouts of S seconds (the stall window twice that)."""
    global _timeouts
    _timeouts = None if read_s is None else _for_read(read_s)


def _for_read(read_s: float) -> HubTimeouts:
    """One rule for --timeout and VRAMDECK_HUB_TIMEOUT: connect within 10 s (or less), a stall
    window of twice the read timeout (at least 10 s)."""
    return HubTimeouts(connect_s=min(read_s, 10.0), read_s=read_s, stall_s=max(2 * read_s, 10.0))


def _http_timeout():
    """The timeouts as the transport under huggingface_hub takes them (httpx's Timeout, whichever
    httpx that huggingface_hub ships with)."""
    from huggingface_hub.utils import get_session

    t = timeouts()
    kind = type(get_session().timeout)
    return kind(connect=t.connect_s, read=t.read_s, write=t.read_s, pool=t.connect_s)


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
    requested: str | None = None
    """The revision asked for (None: the default branch)."""


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
    if "Timeout" in name:
        return HubError(f"{endpoint()} did not answer within {timeouts().read_s:g} s ({name}) for "
                        f"{repo_id}: try again later, or wait longer with --timeout SECONDS.")
    if "Connect" in name or isinstance(exc, OSError):
        return HubError(f"Cannot reach {endpoint()} ({name}): check the network, or HF_ENDPOINT.")
    if isinstance(exc, RecursionError):
        return HubError(f"{endpoint()} answered a listing for {repo_id} nested too deep to be one.")
    return HubError(f"{repo_id}: {endpoint()} answered something that is not a repo listing "
                    f"({name}: {str(exc)[:120]})")


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

    if revision is not None:
        try:
            checked_revision(revision, "the revision")
        except HubValueError as exc:
            raise HubError(str(exc)) from None
    try:
        info = HfApi(endpoint=endpoint()).model_info(repo_id, revision=revision, files_metadata=True,
                                                     token=_token(), timeout=timeouts().read_s)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence
        raise _explain(exc, repo_id) from None
    try:
        return _checked_listing(repo_id, revision, info)
    except HubValueError as exc:
        raise HubError(f"{endpoint()} listed {repo_id} with a value vramdeck will not use: {exc}. "
                       "Nothing was written.") from None


def _checked_listing(repo_id: str, revision: str | None, info) -> RemoteRepo:
    """The listing's values, each checked (HubValueError naming the field)."""
    siblings = info.siblings or []
    if not isinstance(siblings, list):
        raise HubValueError("siblings is not a list")
    files = []
    seen: set[str] = set()
    for i, s in enumerate(siblings):
        where = f"siblings[{i}]"
        path = checked_repo_path(getattr(s, "rfilename", None), f"{where}.rfilename")
        if path in seen:
            raise HubValueError(f"{where}.rfilename {path!r} is listed twice")
        seen.add(path)
        lfs = getattr(s, "lfs", None)
        sha = checked_sha256(getattr(lfs, "sha256", None), f"{where}.lfs.sha256") if lfs is not None else None
        size = getattr(s, "size", None)
        if size is None and lfs is not None:
            size = getattr(lfs, "size", None)
        files.append(RemoteFile(path, checked_size(0 if size is None else size, f"{where}.size"), sha))
    commit = info.sha if info.sha is not None else (revision or "main")
    return RemoteRepo(repo_id, checked_revision(commit, "sha"), group_models(files), tuple(files), revision)


def _url(repo_id: str, filename: str, revision: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return {**build_hf_headers(token=_token()), **(extra or {})}


def read_range(repo_id: str, filename: str, revision: str, start: int, end: int) -> bytes:
    """Bytes start..end (inclusive) of a file. HubError when the server will not give a range."""
    from huggingface_hub.utils import get_session

    want = end - start + 1
    body = bytearray()
    try:
        with get_session().stream("GET", _url(repo_id, filename, revision), follow_redirects=True,
                                  headers=_headers({"Range": f"bytes={start}-{end}"}),
                                  timeout=_http_timeout()) as r:
            if r.status_code in (401, 403):
                raise HubError(f"{repo_id} needs you to be logged in with access to it: accept its "
                               f"terms on the Hub, then `hf auth login` or set HF_TOKEN.")
            if r.status_code != 206:
                raise HubError(f"{endpoint()} did not answer a range request for {filename} "
                               f"(HTTP {r.status_code}); vramdeck reads headers only, never whole files.")
            for data in r.iter_bytes():
                if len(body) + len(data) > want:  # never hold more than was asked for
                    raise HubError(f"{endpoint()} sent more than the {want:,} bytes asked for of "
                                   f"{filename}: refused (a range answer must be that long).")
                body += data
    except HubError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _explain(exc, repo_id) from None
    return bytes(body)


def read_remote_header(repo_id: str, file: RemoteFile, revision: str) -> tuple[GgufHeader, bytes, int]:
    """A remote GGUF's header, read in growing ranges until it parses (a few MB); with its raw
    bytes (for a sparse local copy) and how many bytes were fetched. HubError when it does not
    parse within HEADER_MAX_READ."""
    if file.size < 32:
        raise HubError(f"{file.path} is listed at {file.size} bytes: too small to be a GGUF file.")
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
    return hf_cache_dir()


def repo_folder(repo_id: str) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return cache_dir() / repo_folder_name(repo_id=repo_id, repo_type="model")


def missing_parts(model: RemoteModel) -> list[int]:
    """The part numbers a split model's names call for that the listing lacks (1-based)."""
    m = _SPLIT.match(Path(model.parts[0].path).name)
    if not m:
        return []
    have = set()
    for p in model.parts:
        pm = _SPLIT.match(Path(p.path).name)
        if pm and pm.group("count") == m.group("count"):
            have.add(int(pm.group("part")))
    return [i for i in range(1, int(m.group("count")) + 1) if i not in have]


def free_bytes(folder: Path) -> int:
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def pull(repo: RemoteRepo, model: RemoteModel, on_progress: Callable[[Progress], None] = lambda p: None,
         retries: int = 3, chunk: int = 1 << 20) -> Path:
    """Download every part of `model` into the cache; the path of its first part. HubError."""
    folder = repo_folder(repo.repo_id)
    lacking = missing_parts(model)
    if lacking:
        count = len(model.parts) + len(lacking)
        raise HubError(f"{model.name} is part of a model in {count} parts, and the repo does not list "
                       f"part{'s' if len(lacking) > 1 else ''} {', '.join(map(str, lacking))}: nothing "
                       "was downloaded (llama.cpp needs every part).")
    try:  # the values were checked when listed; the paths they make are checked again here
        checked_revision(repo.revision, "the revision")
        for part in model.parts:
            if part.sha256 is None:
                raise HubError(f"{part.path} lists no SHA-256 (not an LFS file): it cannot be verified.")
            checked_sha256(part.sha256, f"the SHA-256 of {part.path}")
            inside(folder, folder / "snapshots" / repo.revision / checked_repo_path(part.path, "the file name"))
    except HubValueError as exc:
        raise HubError(f"refused: {exc}") from None
    blobs = private_dir(folder / "blobs")
    missing = 0
    for part in model.parts:
        blob = blobs / str(part.sha256)
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
        inside(folder, link.parent)  # no folder on the way is a link out of the cache
        if not link.is_symlink() and not link.exists():
            link.symlink_to(os.path.relpath(blobs / str(part.sha256), link.parent))
    if repo.requested is None or not COMMIT_RE.match(repo.requested):  # a branch: say where it points
        refs = private_dir(folder / "refs")
        (refs / (repo.requested or "main")).write_text(repo.revision)
    return folder / "snapshots" / repo.revision / model.parts[0].path


def _download(repo: RemoteRepo, part: RemoteFile, blobs: Path,
              on_progress: Callable[[Progress], None], retries: int, chunk: int) -> None:
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
                _fetch_body(repo, part, partial, progress, on_progress)
            except HubError:
                raise
            except OSError as exc:
                if getattr(exc, "errno", None) == 28:  # ENOSPC
                    raise HubError(f"The disk filled up while downloading {part.path}: the partial "
                                   f"file is kept ({partial}); free space and pull again.") from None
                attempt += 1
                if attempt > retries:
                    raise _explain(exc, repo.repo_id) from None
                time.sleep(min(2.0 * attempt, 5.0, timeouts().read_s))
                continue
            except Exception as exc:  # noqa: BLE001 - a lost connection or a stall: resume
                attempt += 1
                if attempt > retries:
                    if "Timeout" in type(exc).__name__ or isinstance(exc, _Stalled):
                        raise HubError(f"{endpoint()} stopped sending {part.path} ({exc}); the partial "
                                       "file is kept: pull again to resume.") from None
                    raise HubError(f"The connection kept breaking while downloading {part.path}; "
                                   f"the partial file is kept: pull again to resume. ({exc})") from None
                time.sleep(min(2.0 * attempt, 5.0, timeouts().read_s))
                continue
        size = partial.stat().st_size
        if size != part.size:
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


class _Stalled(Exception):
    """Fewer than STALL_BYTES came in the stall window."""


def _fetch_body(repo: RemoteRepo, part: RemoteFile, partial: Path, progress: Progress,
                on_progress: Callable[[Progress], None]) -> None:
    """Append the rest of `part` to `partial`: never past its listed size (HubError when the
    server sends more), and _Stalled when the bytes stop coming."""
    from huggingface_hub.utils import get_session

    have = progress.done
    with get_session().stream("GET", _url(repo.repo_id, part.path, repo.revision), follow_redirects=True,
                              headers=_headers({"Range": f"bytes={have}-"}), timeout=_http_timeout()) as r:
        if r.status_code in (401, 403):
            raise HubError(f"{repo.repo_id} needs you to be logged in with access to "
                           "it: `hf auth login` or set HF_TOKEN.")
        if r.status_code not in (200, 206):
            raise HubError(f"{endpoint()} answered HTTP {r.status_code} for {part.path}")
        mode = "ab" if r.status_code == 206 else "wb"  # 200: the server ignored Range
        if mode == "wb":
            progress.done = progress.resumed_from = have = 0
        left = part.size - have
        stall_s = timeouts().stall_s
        window_start, window_bytes = time.monotonic(), 0
        with open(partial, mode) as f:
            os.fchmod(f.fileno(), 0o600)
            for data in r.iter_bytes():
                if len(data) > left:  # more than listed: keep what was listed, refuse the rest
                    f.write(data[:left])
                    progress.done += left
                    on_progress(progress)
                    raise HubError(f"{endpoint()} sent more of {part.path} than the {part.size:,} bytes "
                                   "it listed: stopped at the listed size (the file is checked against "
                                   "its SHA-256 before use); pull again to verify it.")
                f.write(data)
                left -= len(data)
                progress.done += len(data)
                window_bytes += len(data)
                on_progress(progress)
                now = time.monotonic()
                if now - window_start >= stall_s:
                    if window_bytes < STALL_BYTES:
                        raise _Stalled(f"{window_bytes:,} bytes in {now - window_start:.0f} s")
                    window_start, window_bytes = now, 0


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(8 << 20):
            h.update(data)
    return h.hexdigest()
