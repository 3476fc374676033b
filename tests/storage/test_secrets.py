"""fused.secrets: encrypted at rest under the data home, the key elsewhere, managed by
`terrafuse secrets`, read by UDFs in every engine (a shared token runs with the owner's
secrets), and never shown in reprs, errors, logs or caches."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import fused

VALUE = "s3cr3t-VALUE-do-not-leak"


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv("TERRAFUSE_SECRETS_KEY", raising=False)
    for name in list(os.environ):
        if name.startswith("FUSED_SECRET_"):
            monkeypatch.delenv(name)
    return config


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "fused.cli", "secrets", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_cli_set_list_delete_and_encryption_at_rest(fused_home, config_home):
    _cli("set", "MY_KEY", VALUE)
    _cli("set", "OTHER", "x")
    store = fused_home / "secrets.enc"
    key = config_home / "terrafuse" / "secrets.key"
    assert store.is_file() and key.is_file()
    assert VALUE.encode() not in store.read_bytes() and b"MY_KEY" not in store.read_bytes()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert fused_home not in key.parents  # the key is not beside the store
    assert _cli("list").stdout.split() == ["MY_KEY", "OTHER"]
    assert fused.secrets["MY_KEY"] == VALUE and fused.secrets.MY_KEY == VALUE
    _cli("delete", "OTHER")
    assert list(fused.secrets) == ["MY_KEY"]
    assert _cli("delete", "OTHER", check=False).returncode == 1


def test_key_from_the_environment(fused_home, config_home, monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("TERRAFUSE_SECRETS_KEY", Fernet.generate_key().decode())
    _cli("set", "A", VALUE)
    assert not (config_home / "terrafuse" / "secrets.key").exists()
    assert fused.secrets["A"] == VALUE
    monkeypatch.setenv("TERRAFUSE_SECRETS_KEY", Fernet.generate_key().decode())
    with pytest.raises(ValueError, match="encrypted with another key") as error:
        fused.secrets["A"]
    assert VALUE not in str(error.value)
    monkeypatch.setenv("TERRAFUSE_SECRETS_KEY", "not-a-key")
    with pytest.raises(ValueError, match="not a valid Fernet key"):
        fused.secrets["A"]


def test_missing_key_is_explained(fused_home, config_home):
    _cli("set", "A", VALUE)
    (config_home / "terrafuse" / "secrets.key").unlink()
    with pytest.raises(ValueError, match="its key is missing"):
        list(fused.secrets)


def test_plaintext_store_is_read_then_replaced(fused_home, config_home):
    fused_home.mkdir(parents=True, exist_ok=True)
    (fused_home / "secrets.json").write_text(json.dumps({"OLD": VALUE}))
    assert fused.secrets["OLD"] == VALUE
    _cli("set", "NEW", "n")
    assert not (fused_home / "secrets.json").exists()
    assert dict(fused.secrets) == {"NEW": "n", "OLD": VALUE}


def test_values_never_show_in_repr_errors_or_pickles(fused_home, config_home):
    import pickle

    _cli("set", "MY_KEY", VALUE)
    assert VALUE not in repr(fused.secrets) and "MY_KEY" in repr(fused.secrets)
    with pytest.raises(KeyError) as error:
        fused.secrets["MISSING"]
    assert VALUE not in str(error.value)
    assert VALUE.encode() not in pickle.dumps(fused.secrets)
    assert pickle.loads(pickle.dumps(fused.secrets)) is fused.secrets


def test_local_engine_udf_reads_secrets(fused_home, config_home):
    _cli("set", "MY_KEY", VALUE)

    @fused.udf
    def udf():
        import pandas as pd

        return pd.DataFrame({"n": [len(fused.secrets["MY_KEY"])]})

    assert fused.run(udf, engine="local")["n"][0] == len(VALUE)
    assert _files_containing(fused_home, VALUE.encode()) == []


SECRET_UDF = """
@fused.udf
def udf():
    import hashlib
    import pandas as pd
    value = fused.secrets["MY_KEY"]
    return pd.DataFrame({"n": [len(value)], "digest": [hashlib.sha256(value.encode()).hexdigest()]})
"""


def test_shared_token_runs_with_the_owners_secrets(
    terrafused_bin, tmp_path, fused_home, config_home, monkeypatch, assert_log_clean
):
    import hashlib

    from fused._server import start_server

    # The owner's server: its own data home and key.
    owner_home = tmp_path / "owner-home"
    owner_env = dict(
        os.environ, TERRAFUSE_HOME=str(owner_home), XDG_CONFIG_HOME=str(tmp_path / "owner-xdg")
    )
    subprocess.run(
        [sys.executable, "-m", "fused.cli", "secrets", "set", "MY_KEY", VALUE],
        env=owner_env,
        check=True,
        timeout=60,
    )
    server = start_server(binary=terrafused_bin, port=0, home=owner_home, workers=1, env=owner_env)
    try:
        token = (owner_home / "credentials").read_text().strip()
        monkeypatch.setenv("TERRAFUSE_TOKEN", token)
        fused.options.base_url = server.base_url
        udf = fused.load(SECRET_UDF)
        udf.name = "uses_secret"
        udf.to_fused()
        shared = udf.create_access_token().token
        # The caller has a secret of the same name: the run must not see it.
        monkeypatch.setenv("FUSED_SECRET_MY_KEY", "the-callers-value")
        monkeypatch.delenv("TERRAFUSE_TOKEN")
        r = requests.get(
            f"{server.base_url}/realtime-shared/{shared}/run/file?dtype_out_vector=json", timeout=60
        )
        assert r.status_code == 200, r.text
        row = json.loads(r.text)[0]
        assert row == {"n": len(VALUE), "digest": hashlib.sha256(VALUE.encode()).hexdigest()}
        # A second call is a cache hit: the cache holds the output, never the secret.
        assert requests.get(r.url, timeout=60).status_code == 200
        assert VALUE not in server.log_text()
        leaked = [p for p in _files_containing(owner_home, VALUE.encode())]
        assert leaked == []
    finally:
        assert server.stop() == 0
    assert_log_clean(server)
