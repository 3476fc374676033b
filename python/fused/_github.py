"""Resolve GitHub ``tree``/``blob`` URLs to local files, for ``fused.load``.

A URL names a repository, a ref (branch, tag, full or abbreviated commit SHA) and a path.
:func:`fetch` resolves the ref to a commit and extracts the path at that commit into a cache
directory, from one of two sources:

* a mirror directory of bare repositories ``<mirror>/<owner>/<repo>.git`` read with the ``git``
  command (air-gapped installs, tests), set by ``TERRAFUSE_GITHUB_MIRROR`` or passed explicitly;
* otherwise HTTPS: the GitHub REST API resolves the ref, the codeload tarball of the commit
  supplies the files. ``TERRAFUSE_GITHUB_API_URL`` and ``TERRAFUSE_GITHUB_CODELOAD_URL`` replace
  their base URLs (GitHub Enterprise, an internal proxy, a fake GitHub in tests).

Cache layout (a commit is fetched once per path)::

    <cache_dir>/<owner>/<repo>/<commit sha>/<key>/<name>

``<owner>`` and ``<repo>`` are lower-cased (GitHub names are case-insensitive), ``<key>`` is
the repository path percent-encoded into one directory name (``public%2FHello``; ``%root`` for
the whole repository; ``%hash-<sha256>`` when too long) and ``<name>`` is the last path segment
(the repository name for the root), i.e. the returned directory or file. Each ``<key>``
directory is written under a ``%tmp-*`` name and renamed into place, so it is complete once it
exists. Names starting with ``%`` and a non-hex letter never come out of the percent-encoding.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import quote, unquote, urlsplit

import requests

from ._errors import EngineIOError, InvalidArgumentError, NotFoundError

MIRROR_ENV = "TERRAFUSE_GITHUB_MIRROR"
API_URL_ENV = "TERRAFUSE_GITHUB_API_URL"  # e.g. a GitHub Enterprise API, or a fake in tests
CODELOAD_URL_ENV = "TERRAFUSE_GITHUB_CODELOAD_URL"
API_URL = "https://api.github.com"
CODELOAD_URL = "https://codeload.github.com"
# A UDF folder is code and a little data: refuse to fill the disk from a huge path or archive.
MAX_PATH_BYTES = 256 << 20
MAX_ARCHIVE_BYTES = 2 << 30

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
_COMMITISH = re.compile(r"HEAD|[0-9a-fA-F]{4,40}")  # tried as a commit when no ref name matches
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_TIMEOUT = (10, 120)  # seconds: connect, read


class GithubRef(NamedTuple):
    """A parsed GitHub URL.

    ``ref`` is the first segment after ``tree``/``blob`` and ``path`` the rest, joined with
    ``/`` (empty for the repository root). A branch or tag whose name contains ``/`` takes
    more segments; :func:`fetch` moves them from ``path`` to the ref by longest-prefix match
    against the repository's refs, as GitHub does.
    """

    owner: str
    repo: str
    kind: str  # "tree" or "blob"
    ref: str
    path: str


def parse_github_url(url: str) -> GithubRef:
    """Parse a GitHub ``tree``/``blob`` or ``raw.githubusercontent.com`` URL.

    Parameters
    ----------
    url : str
        ``https://github.com/<owner>/<repo>/tree/<ref>/<path>``,
        ``https://github.com/<owner>/<repo>/blob/<ref>/<path>`` or
        ``https://raw.githubusercontent.com/<owner>/<repo>/<ref>/<path>`` (a blob). The scheme
        may be omitted; query and fragment are ignored; segments are percent-decoded.

    Returns
    -------
    GithubRef

    Raises
    ------
    InvalidArgumentError
        If the URL is not such a URL, a blob has no path, or a segment is ``..``.
    """
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    segments = [s for s in unquote(parts.path).split("/") if s not in ("", ".")]
    if parts.scheme not in ("http", "https") or host not in (
        "github.com", "www.github.com", "raw.githubusercontent.com"
    ):
        raise InvalidArgumentError(f"not a GitHub URL: {url!r}")
    if any(s == ".." or "\\" in s or "\0" in s for s in segments):
        raise InvalidArgumentError(f"GitHub URL must not contain '..' or '\\' segments: {url!r}")
    if host == "raw.githubusercontent.com":
        segments.insert(2, "blob")
    if len(segments) < 4 or segments[2] not in ("tree", "blob"):
        raise InvalidArgumentError(
            f"expected https://github.com/<owner>/<repo>/(tree|blob)/<ref>/<path>, got {url!r}"
        )
    owner, repo, kind, ref, *path = segments
    repo = repo[:-4] if repo.endswith(".git") else repo
    if not (_NAME.fullmatch(owner) and _NAME.fullmatch(repo)) or repo.startswith("."):
        raise InvalidArgumentError(f"invalid GitHub owner or repository in {url!r}")
    if kind == "blob" and not path:
        raise InvalidArgumentError(f"GitHub blob URL names no file: {url!r}")
    return GithubRef(owner, repo, kind, ref, "/".join(path))


def fetch(
    url: str, *, cache_dir: str | os.PathLike, mirror: str | os.PathLike | None = None
) -> Path:
    """Resolve a GitHub URL to a local directory (tree) or file (blob), fetching it if needed.

    Parameters
    ----------
    url : str
        See :func:`parse_github_url`.
    cache_dir : path-like
        Root of the extraction cache (layout in the module docstring); created if missing.
    mirror : path-like, optional
        Directory of bare repositories ``<owner>/<repo>.git``. Defaults to the
        ``TERRAFUSE_GITHUB_MIRROR`` environment variable; when neither is set, GitHub is
        reached over HTTPS (``GITHUB_TOKEN`` or ``GH_TOKEN``, if set, authenticates API calls).

    Returns
    -------
    pathlib.Path
        The path at the resolved commit: a directory or a file, whatever the repository holds
        there (GitHub itself redirects ``tree`` URLs of files to ``blob`` and vice versa).

    Raises
    ------
    InvalidArgumentError
        Malformed URL, or a blob URL whose ref takes all its segments.
    NotFoundError
        Unknown repository, ref, commit or path.
    EngineIOError
        ``git`` or the network failed.

    Notes
    -----
    A URL whose ref is a full 40-hex SHA already in the cache is answered without git or
    network. Branch and tag names are resolved on each call; their commit's files are fetched
    once.
    """
    ref = parse_github_url(url)
    root = Path(cache_dir) / ref.owner.lower() / ref.repo.lower()
    if _FULL_SHA.fullmatch(ref.ref):
        cached = root / ref.ref.lower() / _key(ref.path) / _name(ref.repo, ref.path)
        if cached.exists():
            return cached
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    source = _Mirror(Path(mirror), ref.owner, ref.repo) if mirror else _Https(ref.owner, ref.repo)
    sha, path = source.resolve([ref.ref, *ref.path.split("/")] if ref.path else [ref.ref])
    if ref.kind == "blob" and not path:
        raise InvalidArgumentError(f"GitHub blob URL names no file after its ref: {url!r}")
    entry, name = root / sha / _key(path), _name(ref.repo, path)
    if not entry.exists():
        _install(entry, lambda tmp: source.extract(sha, path, tmp / name),
                 f"path {path!r} not found in {ref.owner}/{ref.repo} at {sha}")
    return entry / name


def _name(repo: str, path: str) -> str:
    return path.rsplit("/", 1)[-1] if path else repo


def _key(path: str) -> str:
    """One directory name per repository path (see the module docstring)."""
    key = quote(path, safe="")
    if not key:
        return "%root"
    return key if len(key) <= 150 else "%hash-" + hashlib.sha256(path.encode()).hexdigest()


def _install(entry: Path, fill: Callable[[Path], bool], missing: str) -> None:
    """Fill a temp dir beside ``entry`` and rename it into place; a lost race keeps the winner.

    ``fill(tmp)`` returns False when the path does not exist: NotFoundError(``missing``).
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="%tmp-", dir=entry.parent))
    try:
        if not fill(tmp):
            raise NotFoundError(missing)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, entry)
        except OSError:
            if not entry.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _match_ref(segments: list[str], refnames) -> tuple[str | None, str]:
    """Longest ``segments`` prefix naming a ref: ``(full refname or None, remaining path)``."""
    for i in range(len(segments), 0, -1):
        name = "/".join(segments[:i])
        for full in (name, "refs/heads/" + name, "refs/tags/" + name):
            if full.startswith("refs/") and full in refnames:
                return full, "/".join(segments[i:])
    return None, "/".join(segments[1:])


def _base_url(env: str, default: str) -> str:
    return (os.environ.get(env) or default).rstrip("/")


def _extract(tar: tarfile.TarFile, dest: Path, path: str, strip_top: bool) -> bool:
    """Write the regular files and directories of ``tar`` under ``path`` to ``dest``.

    Member names are relative to the repository root, after dropping their first component if
    ``strip_top``; ``path`` itself becomes ``dest``. Links and members with ``..`` are skipped.
    Returns whether anything was written; more than ``MAX_PATH_BYTES`` is an error.
    """
    prefix = path.split("/") if path else []
    found = False
    total = 0
    for member in tar:
        parts = [p for p in member.name.split("/") if p not in ("", ".")][int(strip_top):]
        if parts[: len(prefix)] != prefix or ".." in parts:
            continue
        if not (member.isfile() or member.isdir()):
            continue
        if strip_top and not parts:
            continue  # the archive's top directory, when the whole repository is asked for
        target = dest.joinpath(*parts[len(prefix):])
        found = True
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        total += member.size
        if total > MAX_PATH_BYTES:
            raise InvalidArgumentError(f"{path or 'the repository'!r} holds more than "
                                       f"{MAX_PATH_BYTES >> 20} MiB: too large to load as a UDF")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tar.extractfile(member) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        if member.mode & 0o111:
            target.chmod(0o755)
    return found


class _Mirror:
    """A bare repository ``<mirror>/<owner>/<repo>.git`` read with the ``git`` command."""

    def __init__(self, mirror: Path, owner: str, repo: str):
        self.label = f"{owner}/{repo}"
        self.git_dir = mirror / owner / f"{repo}.git"
        if not self.git_dir.is_dir():  # GitHub names are case-insensitive
            wanted = (owner.lower(), f"{repo}.git".lower())
            matches = [
                d for o in (mirror.iterdir() if mirror.is_dir() else ())
                if o.name.lower() == wanted[0] and o.is_dir()
                for d in o.iterdir() if d.name.lower() == wanted[1] and d.is_dir()
            ]
            if not matches:
                raise NotFoundError(f"repository {self.label} not found in GitHub mirror {mirror}")
            self.git_dir = matches[0]

    def _git(self, *args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
        env = dict(os.environ, GIT_LITERAL_PATHSPECS="1", GIT_TERMINAL_PROMPT="0")
        cmd = ["git", "-c", "safe.directory=*", "--git-dir", str(self.git_dir), *args]
        try:
            return subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
        except OSError as e:
            raise EngineIOError(f"cannot run git for the GitHub mirror: {e}") from e

    def _rev_parse(self, rev: str) -> str | None:
        done = self._git("rev-parse", "--verify", "--quiet", rev)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def resolve(self, segments: list[str]) -> tuple[str, str]:
        listing = self._git("for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags")
        if listing.returncode != 0:
            raise EngineIOError(f"git for-each-ref failed in {self.git_dir}: "
                                f"{listing.stderr.decode(errors='replace').strip()}")
        full, path = _match_ref(segments, set(listing.stdout.decode().splitlines()))
        rev = full or (segments[0] if _COMMITISH.fullmatch(segments[0]) else None)
        sha = rev and self._rev_parse(rev + "^{commit}")
        if not sha:
            raise NotFoundError(f"unknown ref {segments[0]!r} in {self.label}: no branch, tag or "
                                f"commit matches {'/'.join(segments)!r}")
        return sha, path

    def extract(self, sha: str, path: str, dest: Path) -> bool:
        if path and self._git("cat-file", "-e", f"{sha}:{path}").returncode != 0:
            return False
        with tempfile.TemporaryFile() as archive:
            done = self._git("archive", "--format=tar", sha, *(["--", path] if path else []),
                             stdout=archive)
            if done.returncode != 0:
                raise EngineIOError(f"git archive failed in {self.git_dir}: "
                                    f"{done.stderr.decode(errors='replace').strip()}")
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                return _extract(tar, dest, path, strip_top=False)


def _http_session() -> requests.Session:
    """The HTTP session of the HTTPS source (tests replace this)."""
    return requests.Session()


class _Https:
    """GitHub over HTTPS: the REST API resolves refs, codeload serves the commit's tarball."""

    def __init__(self, owner: str, repo: str):
        self.owner, self.repo, self.label = owner, repo, f"{owner}/{repo}"
        self.api = f"{_base_url(API_URL_ENV, API_URL)}/repos/{owner}/{repo}"
        self.session = _http_session()
        self.headers = {
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"
        }
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def _get(self, url: str, **kwargs) -> requests.Response | None:
        """GET, or None on 404/422 (GitHub's "no such thing"); other failures raise."""
        try:
            resp = self.session.get(url, timeout=_TIMEOUT, **kwargs)
        except requests.RequestException as e:
            raise EngineIOError(f"cannot reach {url}: {e}") from e
        if resp.status_code in (404, 422):
            resp.close()
            return None
        if resp.status_code >= 400:
            text = resp.text[:300] if not kwargs.get("stream") else ""
            resp.close()
            raise EngineIOError(f"GET {url} failed: HTTP {resp.status_code} {text}".strip())
        return resp

    def resolve(self, segments: list[str]) -> tuple[str, str]:
        if _FULL_SHA.fullmatch(segments[0]):  # codeload answers 404 if it is not a commit
            return segments[0].lower(), "/".join(segments[1:])
        # List the refs whose names start with the first segment (refname -> {"type", "sha"}).
        if segments[0] == "refs" and len(segments) > 2 and segments[1] in ("heads", "tags"):
            queries = [(segments[1], segments[2])]  # raw URLs spell refs/heads/<branch>/...
        else:
            queries = [("heads", segments[0]), ("tags", segments[0])]
        refs = {}
        for namespace, start in queries:
            resp = self._get(f"{self.api}/git/matching-refs/{namespace}/{quote(start, safe='')}",
                             headers=self.headers)
            if resp is None:
                raise NotFoundError(f"GitHub repository {self.label} not found")
            refs.update((item["ref"], item["object"]) for item in resp.json())
        full, path = _match_ref(segments, refs)
        if full and refs[full].get("type") == "commit":
            return refs[full]["sha"], path
        # An annotated tag (peeled by the commits API), or a commit SHA / HEAD.
        rev = full[len("refs/"):] if full else None
        if rev is None and _COMMITISH.fullmatch(segments[0]):
            rev = segments[0]
        resp = rev and self._get(f"{self.api}/commits/{quote(rev, safe='/')}",
                                 headers={**self.headers, "Accept": "application/vnd.github.sha"})
        sha = resp.text.strip() if resp else ""
        if not _FULL_SHA.fullmatch(sha):
            raise NotFoundError(f"unknown ref {segments[0]!r} in {self.label}: no branch, tag or "
                                f"commit matches {'/'.join(segments)!r}")
        return sha.lower(), path

    def extract(self, sha: str, path: str, dest: Path) -> bool:
        url = f"{_base_url(CODELOAD_URL_ENV, CODELOAD_URL)}/{self.owner}/{self.repo}/tar.gz/{sha}"
        resp = self._get(url, stream=True)
        if resp is None:
            raise NotFoundError(f"commit {sha} not found in GitHub repository {self.label}")
        try:
            with tempfile.TemporaryFile() as archive:
                for chunk in resp.iter_content(1 << 20):
                    archive.write(chunk)
                    if archive.tell() > MAX_ARCHIVE_BYTES:
                        raise InvalidArgumentError(f"{url} is larger than {MAX_ARCHIVE_BYTES >> 20} MiB")
                archive.seek(0)
                with tarfile.open(fileobj=archive, mode="r:*") as tar:
                    return _extract(tar, dest, path, strip_top=True)
        except requests.RequestException as e:
            raise EngineIOError(f"download of {url} failed: {e}") from e
        finally:
            resp.close()
