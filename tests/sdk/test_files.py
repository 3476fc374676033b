"""fused.file_path, fused.download, fused.secrets, fused.options and duration parsing.

Every test has its own data home and shared disk (``fused_home`` in conftest). HTTP
downloads go to a server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import collections
import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import fused
from fused._duration import parse_duration


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    """No proxy for the test server; no secrets from the caller's environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in list(os.environ):
        if name.startswith("FUSED_SECRET_"):
            monkeypatch.delenv(name)


def shared() -> Path:
    return Path(fused.options.temp_directory)


def leftovers(folder: Path) -> list[str]:
    """Partial-download files anywhere under ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


def run_python(code: str, *args: str, env: dict | None = None, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# --------------------------------------------------------------------------- file_path


def test_file_path_maps_under_the_temp_directory_and_creates_parents():
    path = fused.file_path("AIS/2024_09/01.parquet")
    assert path == str(shared() / "AIS" / "2024_09" / "01.parquet")
    assert Path(path).parent.is_dir()
    assert not Path(path).exists()  # only the directory is made


def test_file_path_with_trailing_slash_creates_the_directory_itself():
    path = fused.file_path("AIS/2024_10/")
    assert Path(path) == shared() / "AIS" / "2024_10"
    assert Path(path).is_dir()


def test_file_path_mkdir_false_creates_nothing():
    path = fused.file_path("lazy/dir/file.csv", mkdir=False)
    assert path == str(shared() / "lazy" / "dir" / "file.csv")
    assert not (shared() / "lazy").exists()


def test_mount_prefixes_map_to_the_same_place():
    plain = fused.file_path("data/x.csv")
    assert fused.file_path("/mount/data/x.csv") == plain
    assert fused.file_path("/mnt/cache/data/x.csv") == plain
    Path(plain).write_text("hello")
    assert Path(fused.file_path("/mnt/cache/data/x.csv")).read_text() == "hello"
    assert fused.file_path("/mount/", mkdir=False) == str(shared())


def test_file_path_stays_on_the_shared_disk():
    # Absolute paths other than the mount prefixes are placed under the shared disk too,
    # and a prefix only counts as a whole path component.
    assert fused.file_path("/etc/passwd", mkdir=False) == str(shared() / "etc" / "passwd")
    assert fused.file_path("/mountain/x", mkdir=False) == str(shared() / "mountain" / "x")


def test_file_path_follows_the_temp_directory_option(tmp_path):
    fused.options.temp_directory = str(tmp_path / "other")
    assert fused.file_path("a/b.txt") == str(tmp_path / "other" / "a" / "b.txt")
    assert (tmp_path / "other" / "a").is_dir()


@pytest.mark.parametrize("bad", ["../outside.txt", "a/../../b", "/mount/../etc/passwd",
                                 "/mnt/cache/x/../../y", "a/.."])
def test_file_path_rejects_dotdot(bad, tmp_path):
    with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
        fused.file_path(bad)
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize("bad", ["", None, 5, Path("x")])
def test_file_path_needs_a_non_empty_string(bad):
    with pytest.raises(ValueError, match="non-empty string"):
        fused.file_path(bad)


# --------------------------------------------------------------------------- download: local


def test_download_local_path_copies_once(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"first version" * 1000)
    path = fused.download(str(src), "dl/copy.bin")
    assert path == fused.file_path("dl/copy.bin")
    assert Path(path).read_bytes() == b"first version" * 1000
    src.write_bytes(b"second version")
    assert fused.download(str(src), "dl/copy.bin") == path
    assert Path(path).read_bytes() == b"first version" * 1000  # not fetched again
    assert leftovers(shared()) == []


def test_download_file_url(tmp_path):
    src = tmp_path / "dir with space" / "src.txt"
    src.parent.mkdir()
    src.write_text("from a file url")
    path = fused.download(src.as_uri(), "/mount/dl/url.txt")
    assert path == str(shared() / "dl" / "url.txt")
    assert Path(path).read_text() == "from a file url"


def test_download_from_the_mount(tmp_path):
    Path(fused.file_path("inbox/a.txt")).write_text("on the mount")
    path = fused.download("file:///mnt/cache/inbox/a.txt", "copies/a.txt")
    assert Path(path).read_text() == "on the mount"
    path2 = fused.download("/mount/inbox/a.txt", "copies/b.txt")
    assert Path(path2).read_text() == "on the mount"


def test_download_of_a_missing_file_leaves_nothing(tmp_path):
    with pytest.raises(fused.NotFoundError, match="no such file"):
        fused.download(str(tmp_path / "absent.bin"), "dl/absent.bin")
    assert not (shared() / "dl" / "absent.bin").exists()
    assert leftovers(shared()) == []
    # A later successful download is not blocked by the failure.
    (tmp_path / "absent.bin").write_bytes(b"now here")
    path = fused.download(str(tmp_path / "absent.bin"), "dl/absent.bin")
    assert Path(path).read_bytes() == b"now here"


def test_download_rejects_unknown_schemes_and_dotdot(tmp_path):
    with pytest.raises(ValueError, match="scheme 'ftp' is not supported"):
        fused.download("ftp://example.com/x", "dl/x")
    assert leftovers(shared()) == [] and not (shared() / "dl" / "x").exists()
    with pytest.raises(ValueError, match=r"'\.\.' is not allowed"):
        fused.download(str(tmp_path), "../escape")


# --------------------------------------------------------------------------- download: http

PAYLOAD = bytes(range(256)) * 800  # 200 KiB


class Server:
    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts[path]


@pytest.fixture
def server():
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's name
            with state.lock:
                state.counts[self.path] += 1
            if self.path.startswith("/slow"):
                time.sleep(0.8)
            if self.path.startswith("/missing"):
                self.send_error(404, "Not Found")
                return
            if self.path.startswith(("/truncated", "/files/download?path=fd%3A%2F%2Fx%2Ftruncated")):
                # Promise the whole payload, send a tenth of it, hang up.
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD[: len(PAYLOAD) // 10])
                self.wfile.flush()
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *args):
            pass

    state.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.httpd.daemon_threads = True
    thread = threading.Thread(target=state.httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    state.httpd.shutdown()
    state.httpd.server_close()
    thread.join(5)


def test_http_download_fetches_once(server):
    path = fused.download(server.url("/data.bin"), "web/data.bin")
    assert path == fused.file_path("web/data.bin")
    assert Path(path).read_bytes() == PAYLOAD
    assert server.count("/data.bin") == 1
    assert fused.download(server.url("/data.bin"), "web/data.bin") == path
    assert fused.download(server.url("/data.bin"), "/mount/web/data.bin") == path  # same target
    assert server.count("/data.bin") == 1
    assert leftovers(shared()) == []


def test_http_404_leaves_no_file(server):
    with pytest.raises(fused.NotFoundError, match=r"Cannot download 'http://127\.0\.0\.1:\d+/missing\.bin': HTTP 404"):
        fused.download(server.url("/missing.bin"), "web/missing.bin")
    assert not (shared() / "web" / "missing.bin").exists()
    assert leftovers(shared()) == []
    # Failures are not remembered: the next call tries again.
    with pytest.raises(fused.NotFoundError):
        fused.download(server.url("/missing.bin"), "web/missing.bin")
    assert server.count("/missing.bin") == 2


def test_http_truncated_body_leaves_no_file(server):
    with pytest.raises(fused._errors.EngineIOError, match="Cannot download .*IncompleteRead"):
        fused.download(server.url("/truncated.bin"), "web/truncated.bin")
    assert not (shared() / "web" / "truncated.bin").exists()
    assert leftovers(shared()) == []


def test_api_download_through_a_server_is_exact_and_refuses_a_cut_body(server, monkeypatch, tmp_path):
    # fused.api.download reads the server's answer straight into one buffer; http.client
    # does not notice a body that stops short of its Content-Length, so the SDK checks.
    monkeypatch.setenv("TERRAFUSE_TOKEN", "tok")
    fused.options.base_url = server.url("")
    try:
        fused.api.download("fd://x/data.bin", tmp_path / "data.bin")
        assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
        with pytest.raises(fused.FusedError, match=r"'fd://x/truncated.bin' was cut short: \d+ bytes missing"):
            fused.api.download("fd://x/truncated.bin", tmp_path / "truncated.bin")
    finally:
        fused.options.base_url = None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_concurrent_threads_download_once(server):
    results, errors = [], []
    start = threading.Barrier(4)

    def worker():
        start.wait()
        try:
            results.append(fused.download(server.url("/slow-threads.bin"), "web/threads.bin"))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert Path(results[0]).read_bytes() == PAYLOAD
    assert server.count("/slow-threads.bin") == 1


CONCURRENT_DOWNLOAD = """\
import json, os, sys, time
import fused

barrier, me, url = sys.argv[1:4]
open(os.path.join(barrier, me), "w").close()
deadline = time.time() + 30
while len(os.listdir(barrier)) < 2 and time.time() < deadline:
    time.sleep(0.002)
path = fused.download(url, "web/concurrent.bin")
print(json.dumps({"path": path, "size": os.path.getsize(path)}))
"""


def test_concurrent_processes_download_once(server, tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    url = server.url("/slow-procs.bin")
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_DOWNLOAD, str(barrier), name, url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ))
             for name in ("p1", "p2")]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    expected = str(shared() / "web" / "concurrent.bin")
    assert outputs == [{"path": expected, "size": len(PAYLOAD)}] * 2
    assert server.count("/slow-procs.bin") == 1
    assert Path(expected).read_bytes() == PAYLOAD
    assert leftovers(shared()) == []


# --------------------------------------------------------------------------- secrets


def secrets_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "fused.cli", "secrets", *args],
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_missing_secret_names_the_key_and_how_to_set_it():
    how = r"(?s)'api_key'.*terrafuse secrets set api_key.*FUSED_SECRET_api_key"
    with pytest.raises(KeyError, match=how):
        fused.secrets["api_key"]
    with pytest.raises(AttributeError, match="api_key"):
        fused.secrets.api_key  # noqa: B018
    assert "api_key" not in fused.secrets
    assert fused.secrets.get("api_key") is None


def test_secrets_from_the_cli_store():
    secrets_cli("set", "MY_TOKEN", "s3cr3t value")
    secrets_cli("set", "other", "two")
    store = Path(os.environ["TERRAFUSE_HOME"]) / "secrets.enc"  # encrypted: tests/storage/test_secrets.py
    assert b"s3cr3t" not in store.read_bytes()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert fused.secrets["MY_TOKEN"] == "s3cr3t value"
    assert fused.secrets.MY_TOKEN == "s3cr3t value"
    assert fused.secrets.other == "two"
    assert sorted(fused.secrets) == ["MY_TOKEN", "other"] and len(fused.secrets) == 2
    assert "MY_TOKEN" in dir(fused.secrets)

    listed = secrets_cli("list").stdout
    assert listed.split() == ["MY_TOKEN", "other"]
    assert "s3cr3t" not in listed

    secrets_cli("set", "MY_TOKEN", "rotated")
    assert fused.secrets["MY_TOKEN"] == "rotated"  # read fresh, not cached at import
    secrets_cli("delete", "other")
    with pytest.raises(KeyError, match="other"):
        fused.secrets["other"]
    missing = secrets_cli("delete", "other", check=False)
    assert missing.returncode == 1 and "'other' is not set" in missing.stderr


def test_secrets_from_the_environment_override_the_store(monkeypatch):
    secrets_cli("set", "DB_PASSWORD", "from-store")
    monkeypatch.setenv("FUSED_SECRET_DB_PASSWORD", "from-env")
    monkeypatch.setenv("FUSED_SECRET_ONLY_ENV", "env-only")
    assert fused.secrets["DB_PASSWORD"] == "from-env"
    assert fused.secrets.ONLY_ENV == "env-only"
    assert sorted(fused.secrets) == ["DB_PASSWORD", "ONLY_ENV"]
    monkeypatch.delenv("FUSED_SECRET_DB_PASSWORD")
    assert fused.secrets["DB_PASSWORD"] == "from-store"


def test_secrets_repr_shows_names_never_values(monkeypatch):
    assert "none set" in repr(fused.secrets)
    secrets_cli("set", "VISIBLE_NAME", "hidden-value-123")
    monkeypatch.setenv("FUSED_SECRET_ENV_NAME", "hidden-env-456")
    text = repr(fused.secrets)
    assert "VISIBLE_NAME" in text and "ENV_NAME" in text
    assert "hidden-value-123" not in text and "hidden-env-456" not in text
    assert "hidden" not in str(fused.secrets)


def test_secrets_are_visible_to_a_subprocess_with_the_same_home():
    secrets_cli("set", "SHARED", "across-processes")
    out = run_python("import fused; print(fused.secrets['SHARED'])").stdout.strip()
    assert out == "across-processes"


def test_unreadable_secret_store_is_a_clear_error():
    store = Path(os.environ["TERRAFUSE_HOME"]) / "secrets.json"
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("{not json")
    with pytest.raises(ValueError, match="Cannot read the secret store"):
        fused.secrets["anything"]


def test_secrets_cli_set_needs_a_name():
    proc = secrets_cli("set", check=False)
    assert proc.returncode == 2 and "needs a NAME" in proc.stderr


# --------------------------------------------------------------------------- options


def test_unknown_option_names_it():
    with pytest.raises(AttributeError, match=r"no option 'cache_dir'.*cache_directory"):
        fused.options.cache_dir  # noqa: B018
    with pytest.raises(AttributeError, match=r"no option 'made_up'"):
        fused.options.made_up = 1
    assert "made_up" not in repr(fused.options)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("cache_max_bytes", -1, ValueError),
        ("cache_max_bytes", 0, ValueError),
        ("cache_max_bytes", "10GB", ValueError),
        ("cache_max_bytes", True, ValueError),
        ("cache_max_bytes", 1.5, ValueError),
        ("verbose_cached_functions", "yes", TypeError),
        ("verbose_cached_functions", 1, TypeError),
        ("local_engine_cache", None, TypeError),
        ("cache_directory", 5, TypeError),
        ("temp_directory", None, TypeError),
        ("base_url", 8080, TypeError),
        ("default_udf_run_engine", "cloud", ValueError),
    ],
)
def test_bad_option_values_are_rejected(name, value, error):
    before = getattr(fused.options, name)
    with pytest.raises(error, match=rf"fused\.options\.{name}"):
        setattr(fused.options, name, value)
    assert getattr(fused.options, name) == before


def test_good_option_values_are_accepted(tmp_path):
    fused.options.cache_directory = tmp_path / "pathlike"  # os.PathLike becomes a str
    assert fused.options.cache_directory == str(tmp_path / "pathlike")
    fused.options.default_udf_run_engine = "local"
    fused.options.default_udf_run_engine = None
    fused.options.cache_max_bytes = 1
    assert fused.options.cache_max_bytes == 1
    text = repr(fused.options)
    assert "cache_max_bytes = 1" in text and "cache_directory" in text
    assert {"save", "reset", "cache_directory", "temp_directory"} <= set(dir(fused.options))


def test_saved_options_are_read_by_a_fresh_process(monkeypatch):
    monkeypatch.delenv("TERRAFUSE_BASE_URL", raising=False)
    fused.options.cache_max_bytes = 123456
    fused.options.verbose_cached_functions = True
    fused.options.default_udf_run_engine = "local"
    fused.options.save()
    saved = json.loads(fused.options.path.read_text())
    assert fused.options.path == Path(os.environ["TERRAFUSE_HOME"]) / "options.json"
    assert saved["cache_max_bytes"] == 123456
    assert saved["verbose_cached_functions"] is True
    assert saved["default_udf_run_engine"] == "local"
    assert "local_engine_cache" not in saved  # unchanged options are not written

    show = ("import json, fused; o = fused.options; print(json.dumps([o.cache_max_bytes, "
            "o.verbose_cached_functions, o.default_udf_run_engine]))")
    assert json.loads(run_python(show).stdout) == [123456, True, "local"]
    # Another data home does not see them.
    elsewhere = str(Path(os.environ["TERRAFUSE_HOME"]).parent / "h2")
    other = run_python(show, env={"TERRAFUSE_HOME": elsewhere})
    assert json.loads(other.stdout) == [10 * 2**30, False, None]


def test_reset_restores_defaults_without_touching_the_saved_file():
    fused.options.cache_max_bytes = 777
    fused.options.save()
    fused.options.reset()
    assert fused.options.cache_max_bytes == 10 * 2**30
    assert json.loads(fused.options.path.read_text())["cache_max_bytes"] == 777


def test_corrupt_saved_options_warn_and_fall_back_to_defaults():
    path = Path(os.environ["TERRAFUSE_HOME"]) / "options.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{oops")
    proc = run_python("import fused; print(fused.options.cache_max_bytes)", check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == str(10 * 2**30)
    assert "Ignoring saved options" in proc.stderr and str(path) in proc.stderr


def test_invalid_saved_option_values_are_skipped_with_a_warning():
    path = Path(os.environ["TERRAFUSE_HOME"]) / "options.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cache_max_bytes": -3, "not_an_option": 1, "local_engine_cache": False}))
    proc = run_python("import fused; print(fused.options.cache_max_bytes, fused.options.local_engine_cache)",
                      check=False)
    assert proc.returncode == 0 and proc.stdout.split() == [str(10 * 2**30), "False"]
    assert "Ignoring saved option 'cache_max_bytes'" in proc.stderr and "fused.options.cache_max_bytes" in proc.stderr
    assert "Ignoring saved option 'not_an_option'" in proc.stderr


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("30s", 30), ("10m", 600), ("12h", 43200), ("90d", 7776000), ("24h", 86400),
        ("0s", 0), ("0", 0), ("45", 45), (" 10 m ", 600), ("1.5h", 5400), ("0.5s", 0.5),
        (5, 5), (0, 0), (2.5, 2.5), (timedelta(minutes=2), 120), (float("inf"), float("inf")),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds
    assert isinstance(parse_duration(value), float)


@pytest.mark.parametrize(
    "value, match",
    [
        ("abc", r"Invalid cache_max_age 'abc': use a number of seconds"),
        ("10x", r"Invalid cache_max_age '10x'"),
        ("", r"Invalid cache_max_age ''"),
        ("12 hours", r"Invalid cache_max_age"),
        ("1h30m", r"Invalid cache_max_age"),
        ("-5s", r"Invalid cache_max_age '-5s'"),
        ("1e3", r"Invalid cache_max_age"),
        (-5, r"must not be negative"),
        (-0.1, r"must not be negative"),
        (timedelta(seconds=-1), r"must not be negative"),
        (None, r"Invalid cache_max_age None"),
        (True, r"Invalid cache_max_age True"),
        ([5], r"Invalid cache_max_age"),
        (float("nan"), r"Invalid cache_max_age nan"),
    ],
)
def test_parse_duration_rejects(value, match):
    with pytest.raises(ValueError, match=match):
        parse_duration(value)


def test_parse_duration_names_the_parameter():
    with pytest.raises(ValueError, match="Invalid concurrent_lock_timeout 'soon'"):
        parse_duration("soon", name="concurrent_lock_timeout")
