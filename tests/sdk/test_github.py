"""fused._github: GitHub tree/blob URLs resolved from a bare-repository mirror or (faked) HTTPS."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from fused import _github
from fused._errors import EngineIOError, InvalidArgumentError, NotFoundError

BASE = "https://github.com/fusedio/udfs"
HELLO_MAIN = "def udf():\n    return 'main'\n"
HELLO_FEATURE = "def udf():\n    return 'feature'\n"


# --------------------------------------------------------------------------- fixtures


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A work repo and its bare clone at <mirror>/fusedio/udfs.git.

    main: public/Hello/{Hello.py, meta.json}, public/Other/Other.py, README.md; tag v1 (annotated)
    at that commit; branch feature/x with Hello.py changed.
    """
    for name, value in {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
                        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(_github.MIRROR_ENV, raising=False)
    work = tmp_path / "work"
    (work / "public" / "Hello").mkdir(parents=True)
    (work / "public" / "Other").mkdir()
    (work / "public" / "Hello" / "Hello.py").write_text(HELLO_MAIN)
    (work / "public" / "Hello" / "meta.json").write_text(json.dumps({"name": "Hello"}))
    (work / "public" / "Other" / "Other.py").write_text("x = 1\n")
    (work / "README.md").write_text("readme\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    git(work, "tag", "-a", "v1", "-m", "version 1")
    git(work, "checkout", "-q", "-b", "feature/x")
    (work / "public" / "Hello" / "Hello.py").write_text(HELLO_FEATURE)
    git(work, "commit", "-q", "-am", "feature")
    git(work, "checkout", "-q", "main")
    mirror = tmp_path / "mirror"
    (mirror / "fusedio").mkdir(parents=True)
    git(tmp_path, "clone", "-q", "--bare", str(work), str(mirror / "fusedio" / "udfs.git"))

    class Repo:
        pass

    r = Repo()
    r.work, r.mirror, r.cache = work, mirror, tmp_path / "cache"
    r.main = git(work, "rev-parse", "main")
    r.feature = git(work, "rev-parse", "feature/x")
    r.fetch = lambda url: _github.fetch(url, cache_dir=r.cache, mirror=mirror)
    return r


def hello(path: Path) -> str:
    assert path.is_dir() and path.name == "Hello"
    assert sorted(p.name for p in path.iterdir()) == ["Hello.py", "meta.json"]
    assert json.loads((path / "meta.json").read_text()) == {"name": "Hello"}
    return (path / "Hello.py").read_text()


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.name.startswith("%tmp-")]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("url, expected", [
    (f"{BASE}/tree/main/public/Hello/", ("fusedio", "udfs", "tree", "main", "public/Hello")),
    (f"{BASE}/tree/main", ("fusedio", "udfs", "tree", "main", "")),
    (f"{BASE}.git/blob/v1/public/Hello/Hello.py?plain=1#L2",
     ("fusedio", "udfs", "blob", "v1", "public/Hello/Hello.py")),
    ("github.com/fusedio/udfs/tree/feature/x/public/My%20UDF",
     ("fusedio", "udfs", "tree", "feature", "x/public/My UDF")),
    ("https://raw.githubusercontent.com/fusedio/udfs/main/public/Hello/Hello.py",
     ("fusedio", "udfs", "blob", "main", "public/Hello/Hello.py")),
])
def test_parse(url, expected):
    assert tuple(_github.parse_github_url(url)) == expected


@pytest.mark.parametrize("url, match", [
    ("https://gitlab.com/fusedio/udfs/tree/main/x", "not a GitHub URL"),
    ("ftp://github.com/fusedio/udfs/tree/main/x", "not a GitHub URL"),
    (f"{BASE}/commits/main", r"expected https://github.com/<owner>/<repo>/\(tree\|blob\)"),
    (f"{BASE}", "expected"),
    (f"{BASE}/tree", "expected"),
    (f"{BASE}/blob/main", "blob URL names no file"),
    (f"{BASE}/tree/main/public/../../../etc", r"must not contain '\.\.'"),
    (f"{BASE}/tree/main/%2e%2e/x", r"must not contain '\.\.'"),
    ("https://github.com/../udfs/tree/main/x", r"must not contain '\.\.'"),
    ("https://github.com/fused io/udfs/tree/main/x", "invalid GitHub owner or repository"),
])
def test_parse_errors(url, match):
    with pytest.raises(InvalidArgumentError, match=match):
        _github.parse_github_url(url)


# --------------------------------------------------------------------------- mirror


def test_tree_at_branch(repo):
    path = repo.fetch(f"{BASE}/tree/main/public/Hello/")
    assert hello(path) == HELLO_MAIN
    assert path == repo.cache / "fusedio" / "udfs" / repo.main / "public%2FHello" / "Hello"
    assert leftovers(repo.cache) == []


def test_tree_at_branch_with_slash(repo):
    assert hello(repo.fetch(f"{BASE}/tree/feature/x/public/Hello")) == HELLO_FEATURE


def test_tree_at_annotated_tag(repo):
    path = repo.fetch(f"{BASE}/tree/v1/public/Hello")
    assert hello(path) == HELLO_MAIN
    assert repo.main in path.parts


@pytest.mark.parametrize("length", [40, 7])
def test_tree_at_sha(repo, length):
    assert hello(repo.fetch(f"{BASE}/tree/{repo.feature[:length]}/public/Hello")) == HELLO_FEATURE
    assert hello(repo.fetch(f"{BASE}/tree/{repo.main[:length].upper()}/public/Hello")) == HELLO_MAIN


def test_tree_at_head_and_root(repo):
    root = repo.fetch(f"{BASE}/tree/HEAD")
    assert root.name == "udfs" and root.parent.name == "%root"
    assert (root / "README.md").read_text() == "readme\n"
    assert hello(root / "public" / "Hello") == HELLO_MAIN


def test_longest_ref_prefix_wins(repo):
    git(repo.mirror / "fusedio" / "udfs.git", "tag", "feature/x/public", repo.main)
    # "feature/x/public" (a tag at main) is longer than "feature/x" (the branch), so it takes
    # the "public" segment: public/README.md does not exist, README.md at the root does.
    assert repo.fetch(f"{BASE}/blob/feature/x/public/README.md").read_text() == "readme\n"
    missing = f"path 'Hello/Hello.py' not found in fusedio/udfs at {repo.main}"
    with pytest.raises(NotFoundError, match=missing):
        repo.fetch(f"{BASE}/blob/feature/x/public/Hello/Hello.py")
    assert repo.fetch(f"{BASE}/blob/feature/x/README.md").read_text() == "readme\n"


def test_blob(repo):
    path = repo.fetch(f"{BASE}/blob/feature/x/public/Hello/Hello.py")
    assert path.is_file() and path.name == "Hello.py"
    assert path.read_text() == HELLO_FEATURE
    assert sorted(p.name for p in path.parent.iterdir()) == ["Hello.py"]


@pytest.mark.parametrize("ref", ["main", "refs/heads/main", "v1", "refs/tags/v1"])
def test_raw_url(repo, ref):
    url = f"https://raw.githubusercontent.com/fusedio/udfs/{ref}/public/Hello/Hello.py"
    assert repo.fetch(url).read_text() == HELLO_MAIN


def test_file_mode_kept(repo):
    script = repo.work / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    git(repo.work, "add", "run.sh")
    git(repo.work, "commit", "-q", "-m", "script")
    git(repo.work, "push", "-q", str(repo.mirror / "fusedio" / "udfs.git"), "main")
    assert os.access(repo.fetch(f"{BASE}/blob/main/run.sh"), os.X_OK)
    assert not os.access(repo.fetch(f"{BASE}/blob/main/README.md"), os.X_OK)


def test_mirror_from_environment(repo, monkeypatch):
    monkeypatch.setenv(_github.MIRROR_ENV, str(repo.mirror))
    path = _github.fetch(f"{BASE}/tree/main/public/Hello", cache_dir=repo.cache)
    assert hello(path) == HELLO_MAIN


def test_owner_and_repo_case_insensitive(repo):
    assert hello(repo.fetch("https://github.com/FusedIO/UDFs/tree/main/public/Hello")) == HELLO_MAIN


def test_cached_sha_needs_no_git(repo, monkeypatch):
    url = f"{BASE}/tree/{repo.main}/public/Hello"
    first = repo.fetch(url)

    def no_git(*args, **kwargs):
        raise AssertionError(f"git was run: {args}")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.setattr(subprocess, "Popen", no_git)
    (repo.mirror / "fusedio" / "udfs.git").rename(repo.mirror / "gone")
    assert repo.fetch(url) == first
    assert hello(first) == HELLO_MAIN


def test_branch_is_resolved_but_not_refetched(repo, monkeypatch):
    url = f"{BASE}/tree/main/public/Hello"
    first = repo.fetch(url)
    calls = []
    real_run = subprocess.run

    def recording_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording_run)
    assert repo.fetch(url) == first
    assert calls and not any("archive" in cmd for cmd in calls)


def test_branch_moved(repo):
    url = f"{BASE}/tree/main/public/Hello"
    old = repo.fetch(url)
    (repo.work / "public" / "Hello" / "Hello.py").write_text("def udf():\n    return 2\n")
    git(repo.work, "commit", "-q", "-am", "second")
    git(repo.work, "push", "-q", str(repo.mirror / "fusedio" / "udfs.git"), "main")
    new = repo.fetch(url)
    assert new != old and git(repo.work, "rev-parse", "main") in new.parts
    assert hello(new) == "def udf():\n    return 2\n"
    assert hello(old) == HELLO_MAIN  # the old commit's entry stays valid


def test_unknown_repo(repo):
    with pytest.raises(NotFoundError, match="repository fusedio/nope not found in GitHub mirror"):
        repo.fetch("https://github.com/fusedio/nope/tree/main/public/Hello")
    with pytest.raises(NotFoundError, match="repository other/udfs not found"):
        repo.fetch("https://github.com/other/udfs/tree/main/public/Hello")


@pytest.mark.parametrize("ref", ["nope", "feature/y", "deadbeef", "0" * 40, "main~1"])
def test_unknown_ref(repo, ref):
    with pytest.raises(NotFoundError, match=f"unknown ref '{ref.split('/')[0]}' in fusedio/udfs"):
        repo.fetch(f"{BASE}/tree/{ref}/public/Hello")


def test_missing_path(repo):
    missing = f"path 'public/Nope' not found in fusedio/udfs at {repo.main}"
    with pytest.raises(NotFoundError, match=missing):
        repo.fetch(f"{BASE}/tree/main/public/Nope")
    # README.md exists, but only at the root.
    with pytest.raises(NotFoundError, match="path 'public/README.md' not found"):
        repo.fetch(f"{BASE}/blob/v1/public/README.md")
    assert leftovers(repo.cache) == []


def test_blob_url_of_a_ref_only(repo):
    with pytest.raises(InvalidArgumentError, match="names no file after its ref"):
        repo.fetch(f"{BASE}/blob/feature/x")


def test_path_traversal_rejected(repo):
    with pytest.raises(InvalidArgumentError, match=r"'\.\.'"):
        repo.fetch(f"{BASE}/tree/main/public/Hello/../../../../outside")
    assert not repo.cache.exists()


def test_failed_extraction_leaves_nothing(repo, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_github, "_extract", broken)
    with pytest.raises(OSError, match="disk full"):
        repo.fetch(f"{BASE}/tree/main/public/Hello")
    sha_dir = repo.cache / "fusedio" / "udfs" / repo.main
    assert list(sha_dir.iterdir()) == []


def test_lost_rename_race_uses_existing(repo, monkeypatch):
    url = f"{BASE}/tree/main/public/Hello"
    winner = repo.fetch(url)
    (winner / "Hello.py").write_text("# the winner's copy\n")
    entry = winner.parent
    real_rename = os.rename
    hidden = entry.with_name("hidden")
    real_rename(entry, hidden)

    def racing_rename(src, dst):  # another process finishes first
        real_rename(hidden, dst)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", racing_rename)
    assert repo.fetch(url) == winner
    assert (winner / "Hello.py").read_text() == "# the winner's copy\n"
    assert leftovers(repo.cache) == []


# --------------------------------------------------------------------------- HTTPS (faked)

SHA_MAIN = "a" * 40
SHA_FEATURE = "b" * 40
SHA_TAG_OBJECT = "c" * 40


def tarball(files: dict[str, str], top: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        evil = tarfile.TarInfo(f"{top}/public/Hello/link")  # links are never written
        evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(evil)
    return buffer.getvalue()


class FakeResponse:
    def __init__(self, status: int, body: bytes | str | object = b""):
        self.status_code = status
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        self.content = body.encode() if isinstance(body, str) else body

    @property
    def text(self):
        return self.content.decode()

    def json(self):
        return json.loads(self.content)

    def iter_content(self, chunk_size=1):
        for i in range(0, len(self.content), chunk_size):
            yield self.content[i:i + chunk_size]

    def close(self):
        pass


class FakeSession:
    """Serves a repo fusedio/udfs with branches main and feature/x and annotated tag v1."""

    API = "https://api.github.com/repos/fusedio/udfs"

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        files = {"README.md": "readme\n", "public/Hello/meta.json": json.dumps({"name": "Hello"})}
        self.tarballs = {
            SHA_MAIN: tarball({**files, "public/Hello/Hello.py": HELLO_MAIN}, f"udfs-{SHA_MAIN}"),
            SHA_FEATURE: tarball({**files, "public/Hello/Hello.py": HELLO_FEATURE},
                                 f"udfs-{SHA_FEATURE}"),
        }
        self.refs = {
            "refs/heads/main": {"type": "commit", "sha": SHA_MAIN},
            "refs/heads/feature/x": {"type": "commit", "sha": SHA_FEATURE},
            "refs/tags/v1": {"type": "tag", "sha": SHA_TAG_OBJECT},
        }

    def get(self, url, *, timeout=None, headers=None, stream=False):
        assert timeout
        self.calls.append((url, headers or {}))
        prefix = f"{self.API}/git/matching-refs/"
        if url.startswith(prefix):
            start = "refs/" + url[len(prefix):]
            return FakeResponse(200, [{"ref": name, "object": obj}
                                      for name, obj in self.refs.items() if name.startswith(start)])
        if url.startswith(f"{self.API}/commits/"):
            assert headers["Accept"] == "application/vnd.github.sha"
            rev = url[len(f"{self.API}/commits/"):]
            commits = {"tags/v1": SHA_MAIN, "HEAD": SHA_MAIN, SHA_FEATURE[:7]: SHA_FEATURE}
            return FakeResponse(200, commits[rev]) if rev in commits else FakeResponse(422, "{}")
        if url.startswith("https://codeload.github.com/fusedio/udfs/tar.gz/"):
            assert stream and "Authorization" not in (headers or {})
            sha = url.rsplit("/", 1)[1]
            if sha not in self.tarballs:
                return FakeResponse(404)
            return FakeResponse(200, self.tarballs[sha])
        return FakeResponse(404, {"message": "Not Found"})


@pytest.fixture
def https(tmp_path, monkeypatch):
    monkeypatch.delenv(_github.MIRROR_ENV, raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    session = FakeSession()
    monkeypatch.setattr(_github, "_http_session", lambda: session)
    session.fetch = lambda url: _github.fetch(url, cache_dir=tmp_path / "cache")
    session.cache = tmp_path / "cache"
    return session


def test_https_branch(https):
    path = https.fetch(f"{BASE}/tree/main/public/Hello/")
    assert path == https.cache / "fusedio" / "udfs" / SHA_MAIN / "public%2FHello" / "Hello"
    assert hello(path) == HELLO_MAIN
    urls = [url for url, _ in https.calls]
    assert urls == [f"{FakeSession.API}/git/matching-refs/heads/main",
                    f"{FakeSession.API}/git/matching-refs/tags/main",
                    f"https://codeload.github.com/fusedio/udfs/tar.gz/{SHA_MAIN}"]


def test_https_branch_with_slash_and_blob(https):
    path = https.fetch(f"{BASE}/blob/feature/x/public/Hello/Hello.py")
    assert path.read_text() == HELLO_FEATURE


def test_https_annotated_tag_short_sha_head_and_raw(https):
    assert hello(https.fetch(f"{BASE}/tree/v1/public/Hello")) == HELLO_MAIN
    assert hello(https.fetch(f"{BASE}/tree/{SHA_FEATURE[:7]}/public/Hello")) == HELLO_FEATURE
    assert https.fetch(f"{BASE}/tree/HEAD").joinpath("README.md").read_text() == "readme\n"
    raw = ("https://raw.githubusercontent.com/fusedio/udfs/refs/heads/feature/x"
           "/public/Hello/Hello.py")
    assert https.fetch(raw).read_text() == HELLO_FEATURE


def test_https_full_sha_cached(https):
    url = f"{BASE}/tree/{SHA_FEATURE}/public/Hello"
    first = https.fetch(url)
    codeload = f"https://codeload.github.com/fusedio/udfs/tar.gz/{SHA_FEATURE}"
    assert [u for u, _ in https.calls] == [codeload]
    https.calls.clear()
    assert https.fetch(url) == first
    assert https.calls == []
    assert not (first / "link").exists()


def test_https_token_sent_to_api_only(https, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    https.fetch(f"{BASE}/tree/main/public/Hello")
    api = [h for u, h in https.calls if u.startswith("https://api.github.com")]
    assert api and all(h["Authorization"] == "Bearer secret" for h in api)


def test_https_errors(https, monkeypatch):
    with pytest.raises(NotFoundError, match="GitHub repository fusedio/nope not found"):
        https.fetch("https://github.com/fusedio/nope/tree/main/x")
    with pytest.raises(NotFoundError, match="unknown ref 'nope' in fusedio/udfs"):
        https.fetch(f"{BASE}/tree/nope/public/Hello")
    with pytest.raises(NotFoundError, match="unknown ref 'deadbeef' in fusedio/udfs"):
        https.fetch(f"{BASE}/tree/deadbeef/public/Hello")
    with pytest.raises(NotFoundError, match=f"commit {'d' * 40} not found in GitHub repository"):
        https.fetch(f"{BASE}/tree/{'d' * 40}/public/Hello")
    missing = f"path 'public/Nope' not found in fusedio/udfs at {SHA_MAIN}"
    with pytest.raises(NotFoundError, match=missing):
        https.fetch(f"{BASE}/tree/main/public/Nope")
    assert leftovers(https.cache) == []

    https.get = lambda url, **kw: FakeResponse(403, {"message": "API rate limit exceeded"})
    with pytest.raises(EngineIOError, match="HTTP 403 .*rate limit"):
        https.fetch(f"{BASE}/tree/main/public/Hello")

    def offline(url, **kw):
        raise requests.ConnectionError("no route to host")

    https.get = offline
    with pytest.raises(EngineIOError, match="cannot reach .*no route to host"):
        https.fetch(f"{BASE}/tree/main/public/Hello")


def test_https_size_limits(https, monkeypatch):
    monkeypatch.setattr(_github, "MAX_PATH_BYTES", 10)
    with pytest.raises(InvalidArgumentError, match="'public/Hello' holds more than 0 MiB: too large"):
        https.fetch(f"{BASE}/tree/main/public/Hello")
    monkeypatch.setattr(_github, "MAX_ARCHIVE_BYTES", 10)
    with pytest.raises(InvalidArgumentError, match=f"tar.gz/{SHA_MAIN} is larger than 0 MiB"):
        https.fetch(f"{BASE}/tree/main/public/Hello")
    assert leftovers(https.cache) == []


def test_https_base_urls_from_environment(https, monkeypatch):
    monkeypatch.setenv(_github.API_URL_ENV, "https://api.github.com/")
    monkeypatch.setenv(_github.CODELOAD_URL_ENV, "http://127.0.0.1:9/")
    with pytest.raises(NotFoundError, match="commit .* not found"):  # the fake knows no such host
        https.fetch(f"{BASE}/tree/main/public/Hello")
    assert https.calls[-1][0] == f"http://127.0.0.1:9/fusedio/udfs/tar.gz/{SHA_MAIN}"
