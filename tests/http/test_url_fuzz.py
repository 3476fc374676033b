"""URL and query-string parsing of the run routes, against the real terrafused.

A property test (hypothesis) throws random targets at the run routes with real tokens:
percent-encoded bytes, invalid escapes, `..` and `//`, raw UTF-8 and control bytes, very long
segments and values, odd extensions (`.mvt.png`), repeated keys, `+` and `%00`. Every answer
must be a well-formed HTTP response with an expected status (500 only when the UDF itself
raised), every error body the JSON error object, a kept-alive connection must still serve
the next request, and the server must answer /health afterwards. The property test stops
generating after TIME_BUDGET_S seconds.

Deterministic tests pin what a query string turns into for the UDF: percent-decoding, '+' as
a space, empty and missing values, and repeated keys.
"""

from __future__ import annotations

import http.client
import json
import socket
import string
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TIME_BUDGET_S = 7.0
MAX_EXAMPLES = 5000

# Echoes its text parameters; `n` is coerced to int. JSON out, so any value round-trips.
ECHO_UDF = '''
@fused.udf
def udf(a: str = "", b: str = "-", n: int = 0, bounds: fused.types.Bounds = None):
    return {"a": a, "b": b, "n": n}
'''
# A table, so the formats (extensions, dtype_out_vector) go through the encoders.
TABLE_UDF = '''
@fused.udf
def udf(a: str = "", n: int = 0, bounds: fused.types.Bounds = None):
    import pandas as pd
    return pd.DataFrame({"a": [a], "n": [n % 1000]})
'''
# Raises when asked to: the one legitimate 500.
RAISING_UDF = '''
@fused.udf
def udf(a: str = "", boom: str = "", bounds: fused.types.Bounds = None):
    if boom:
        raise ValueError("boom: " + boom)
    return {"a": a}
'''

# The status of each error kind (docs/server.md).
KIND_STATUS = {
    "invalid_argument": 400, "unauthenticated": 401, "permission_denied": 403, "not_found": 404,
    "method_not_allowed": 405, "too_large": 413, "unprocessable_entity": 422, "udf_failed": 500,
}
ALLOWED = {200, 204, 400, 401, 404, 405, 413, 414, 422}


# -- setup --------------------------------------------------------------------------------
def _bearer(server) -> dict[str, str]:
    return {"Authorization": "Bearer " + (Path(server.home) / "credentials").read_text().strip()}


def _save_with_token(server, name: str, code: str) -> str:
    headers = _bearer(server)
    r = requests.post(f"{server.base_url}/udfs", json={"name": name, "code": code, "public": True},
                      headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    r = requests.post(f"{server.base_url}/tokens", json={"udf": name}, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def udfs(server):
    """Tokens and names of the fuzz UDFs, saved once for the module."""
    return {
        "echo": _save_with_token(server, "fuzz_echo", ECHO_UDF),
        "table": _save_with_token(server, "fuzz_table", TABLE_UDF),
        "raising": _save_with_token(server, "fuzz_raising", RAISING_UDF),
        "owner": requests.get(f"{server.base_url}/udfs", headers=_bearer(server), timeout=30).json()[0]["owner"],
    }


# -- one raw exchange -----------------------------------------------------------------------
def _exchange(server, target: bytes, headers: dict[str, str] | None = None):
    """GET `target` (raw bytes) on a fresh keep-alive connection; then, unless the server
    said it closes, GET /health on the same connection. Returns (status, headers, body)."""
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n".encode()
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(head + b"\r\n")
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()  # a well-formed status line and headers, or it raises
            body = response.read()  # exactly Content-Length bytes, or IncompleteRead
        except (http.client.HTTPException, OSError) as e:
            raise AssertionError(f"GET {target[:200]!r}: no well-formed answer ({e!r})") from None
        status, answer_headers = response.status, response.headers
        if not response.will_close:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            again = http.client.HTTPResponse(sock)
            again.begin()
            assert again.status == 200 and json.loads(again.read()) == {"status": "ok"}, \
                f"the connection is unusable after GET {target[:200]!r}"
    return status, answer_headers, body


def _check_answer(target: bytes, status: int, headers, body: bytes) -> None:
    where = f"GET {target[:300]!r} -> {status} {body[:300]!r}"
    if status >= 400:
        assert headers.get("Content-Type", "").startswith("application/json"), where
        error = json.loads(body)["error"]
        assert isinstance(error["kind"], str) and isinstance(error["message"], str) and error["message"], where
        assert KIND_STATUS.get(error["kind"], status) == status, where
        if status == 500:
            assert error["kind"] == "udf_failed", f"a 500 that is not the UDF's own exception: {where}"
            return
    assert status in ALLOWED, where
    if status == 200 and "X-Fused-Cache" in headers:  # a run (tilejson and others have none)
        assert headers["X-Fused-Cache"] in ("hit", "disk_hit", "miss", "shared", "bypass"), where


# -- strategies ------------------------------------------------------------------------------
def _pct(data: bytes) -> str:
    return "".join(f"%{b:02X}" for b in data)


_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_SUB_DELIMS = "!$'()*,;:@"  # legal raw in a path or query
# Raw non-ASCII text as its UTF-8 bytes (one latin-1 char per byte in the target string).
# No whitespace or control characters: a CR/LF would split the request line into another
# request, which tests the client, not the server.
_raw_utf8 = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Z")), max_size=6).map(
    lambda t: t.encode("utf-8").decode("latin-1"))

_segments = st.one_of(
    st.text(_UNRESERVED, max_size=12),
    st.sampled_from(["", ".", "..", "...", "%2e%2e", "%2E", "0.mvt.png", "0.", ".png", "1.parquet.csv",
                     "%2F", "a%2Fb", "%00", "%", "%4", "%zz", "%G0", "+", "%20", "~", "-1", "0x10",
                     "99999999999999999999", "1e3", "00012"]),
    st.binary(max_size=12).map(_pct),  # any bytes, percent-encoded (invalid UTF-8 included)
    st.text(max_size=8).map(lambda t: quote(t, safe="")),  # unicode, encoded
    _raw_utf8,  # unicode, as raw UTF-8 bytes
    st.sampled_from(["\x00", "a\x01b", "\x7f", "\t", "\xff"]),  # bytes that are never legal raw
    st.text(_SUB_DELIMS + "%&=?#", max_size=6),
    st.integers(1000, 70_000).map(lambda n: "x" * n),  # long: the 64 KiB header limit is near
)
_tile_numbers = st.one_of(st.integers(-3, 40).map(str), _segments)
_extensions = st.sampled_from(["", ".geojson", ".json", ".csv", ".parquet", ".feather", ".png", ".npy",
                               ".mvt", ".mvt.png", ".PNG", ".", ".exe", ".%70ng", ".geojson?"])

_names = st.one_of(
    st.sampled_from(["a", "b", "n", "boom"]),
    st.sampled_from(["a", "b", "n", "boom", "dtype_out_vector", "dtype_out_raster", "format",
                     "cache_max_age", "bounds", "x", "y", "z", "", "a+", "%61", "a%00", "=", "unknown"]),
    st.text(_UNRESERVED, min_size=1, max_size=6),
)
_values = st.one_of(
    st.text(_UNRESERVED + "+", max_size=12),
    st.sampled_from(["", "+", "++", "%2B", "%00", "%", "%4", "%zz", "%FF", "%C3%A9", "%E2%82%AC", "%F0%9F%98%80",
                     "0", "-1", "1.5", "1e400", "nan", "99999999999999999999", "csv", "json", "geojson",
                     "parquet", "png", "mvt", "pdf", "0s", "1h", "-5", "a=b", "%26", "%3D"]),
    st.binary(max_size=16).map(_pct),
    st.text(max_size=10).map(lambda t: quote(t, safe="")),
    _raw_utf8,
    st.sampled_from(["\x00", "a\x01b", "\x7f", "\t", "\xff"]),
    st.integers(1000, 80_000).map(lambda n: "v" * n),
)
_pairs = st.lists(st.tuples(_names, st.one_of(st.none(), _values)), max_size=6)


@st.composite
def _targets(draw, udfs):
    """A target on a run route (or a mangled one) and the headers to send with it."""
    token = draw(st.sampled_from([udfs["echo"], udfs["echo"], udfs["table"], udfs["table"], udfs["raising"],
                                  "UDF_fuzz_echo", "fsh_" + "x" * 32, ""]))
    route = draw(st.sampled_from(["file", "tile", "saved", "saved_tile", "tilejson"]))
    if route == "file":
        segments = ["server", "v1", "realtime-shared", token, "run", "file"]
    elif route == "tile":
        segments = ["server", "v1", "realtime-shared", token, "run", "tiles",
                    draw(_tile_numbers), draw(_tile_numbers), draw(_tile_numbers) + draw(_extensions)]
    elif route == "tilejson":
        segments = ["server", "v1", "realtime-shared", token, "tilejson"]
    else:
        name = draw(st.sampled_from(["fuzz_echo", "fuzz_table", "fuzz_raising", "nope"]))
        segments = ["server", "v1", "realtime", "fused", "api", "v1", "run", "udf", "saved", udfs["owner"], name]
        if route == "saved_tile":
            segments += ["tiles", draw(_tile_numbers), draw(_tile_numbers), draw(_tile_numbers) + draw(_extensions)]
    # Mangle: replace, insert or drop segments; `..` and empty segments (`//`) included.
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        action = draw(st.sampled_from(["replace", "insert", "drop"]))
        i = draw(st.integers(0, len(segments) - 1))
        if action == "replace":
            segments[i] = draw(_segments)
        elif action == "insert":
            segments.insert(i, draw(_segments))
        elif len(segments) > 1:
            del segments[i]
    path = "/" + "/".join(segments)
    pairs = draw(_pairs)
    query = "&".join(n if v is None else f"{n}={v}" for n, v in pairs)
    separator = draw(st.sampled_from(["?", "?", "?&", "??"]))
    target = path + (separator + query if query or draw(st.booleans()) else "")
    headers = _bearer_header(udfs) if route.startswith("saved") and draw(st.booleans()) else {}
    return target.encode("latin-1"), headers


def _bearer_header(udfs) -> dict[str, str]:
    return {"Authorization": udfs["bearer"]}


# -- the property -----------------------------------------------------------------------------
def test_random_run_urls_always_get_a_well_formed_answer(server, udfs):
    udfs = {**udfs, "bearer": _bearer(server)["Authorization"]}
    deadline = time.monotonic() + TIME_BUDGET_S
    seen: dict[int, int] = {}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=_targets(udfs))
    def check(request):
        if time.monotonic() > deadline:
            return  # the time budget is spent: the remaining examples are no-ops
        target, headers = request
        status, answer_headers, body = _exchange(server, target, headers)
        seen[status] = seen.get(status, 0) + 1
        _check_answer(target, status, answer_headers, body)

    check()
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    # The generator reaches the UDFs and the error paths, not just 404s.
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0 and seen.get(404, 0) > 0, seen


# -- deterministic: what the UDF receives ----------------------------------------------------
def _echo(server, token: str, query: str, path: str = "file") -> tuple[int, dict]:
    """Raw `query` (sent as is) to the echo UDF, uncached; returns (status, JSON body)."""
    target = f"/server/v1/realtime-shared/{token}/run/{path}?cache_max_age=0&{query}".encode("latin-1")
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=x+y", "x y"),                       # '+' is a space in a query string
        ("a=%2B", "+"),                         # an encoded '+' is a plus
        ("a=%2b%2f", "+/"),                     # lower-case hex
        ("a=%20%09x", " \tx"),
        ("a=%00", "\x00"),                      # NUL reaches the UDF intact
        ("a=nul%00in%00side", "nul\x00in\x00side"),
        ("a=%C3%A9", "é"),
        ("a=%E2%82%AC%F0%9F%98%80", "€😀"),
        ("a=\xc3\xa9", "é"),                    # raw UTF-8 bytes in the target
        ("a=1%3D2%261", "1=2&1"),               # encoded '=' and '&' are data
        ("a=1=2", "1=2"),                       # only the first '=' separates
        ("a=%252F", "%2F"),                     # decoded once, not twice
        ("a=~!*'()$,;:@/?", "~!*'()$,;:@/?"),    # legal raw characters pass as they are
        ("a=", ""),
        ("a", ""),                              # a key without '=' is an empty value
        ("&&a=v&&", "v"),                       # empty pairs are skipped
        ("%61=v", "v"),                         # names are decoded too
        ("a+=v", None),                         # ... and '+' in a name is a space: 'a ' is unknown
        ("a=x#fragment", "x"),                  # a fragment is not part of the query
    ],
)
def test_query_values_reach_the_udf_exactly(server, udfs, query, expected):
    status, body = _echo(server, udfs["echo"], query)
    if expected is None:
        assert status == 422 and "Unknown parameter 'a '" in body["error"]["message"], body
    else:
        assert status == 200, body
        assert body == {"a": expected, "b": "-", "n": 0}


def test_tile_routes_decode_the_query_the_same_way(server, udfs):
    status, body = _echo(server, udfs["echo"], "a=x+%2By%00&b=%C3%A9", path="tiles/3/2/1")
    assert status == 200 and body == {"a": "x +y\x00", "b": "é", "n": 0}


def test_repeated_udf_parameter_the_first_value_wins(server, udfs):
    # As for every other query parameter (dtype_out_*, cache_max_age): the first value.
    assert _echo(server, udfs["echo"], "a=first&a=second") == (200, {"a": "first", "b": "-", "n": 0})
    assert _echo(server, udfs["echo"], "a=second&a=first") == (200, {"a": "second", "b": "-", "n": 0})
    assert _echo(server, udfs["echo"], "n=2&a=x&n=10") == (200, {"a": "x", "b": "-", "n": 2})
    assert _echo(server, udfs["echo"], "n=3&n=zz") == (200, {"a": "", "b": "-", "n": 3})


def test_repeated_parameters_are_cached_by_the_value_the_udf_gets(server, udfs):
    token = _save_with_token(server, "fuzz_order", ECHO_UDF + "# order\n")
    url = f"{server.base_url}/realtime-shared/{token}/run/file"
    first = requests.get(url + "?a=1&a=2", timeout=30)
    assert first.headers["X-Fused-Cache"] == "miss" and first.json()["a"] == "1"
    same = requests.get(url + "?a=1&a=3", timeout=30)  # the ignored value is not in the key
    assert same.headers["X-Fused-Cache"] == "hit" and same.json() == first.json()
    other = requests.get(url + "?a=2&a=1", timeout=30)
    assert other.headers["X-Fused-Cache"] == "miss" and other.json()["a"] == "2"


def test_repeated_run_parameters_the_first_value_wins(server, udfs):
    url = f"{server.base_url}/realtime-shared/{udfs['table']}/run/tiles/1/0/0"
    r = requests.get(url + ".csv?dtype_out_vector=json&dtype_out_vector=csv&cache_max_age=0", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    r = requests.get(url + ".csv?cache_max_age=0&cache_max_age=zz", timeout=30)
    assert r.status_code == 200 and r.headers["X-Fused-Cache"] == "bypass"
    r = requests.get(url + ".csv?cache_max_age=zz&cache_max_age=0", timeout=30)
    assert r.status_code == 400 and "Invalid cache_max_age 'zz'" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("a=%ZZ", 400, "Invalid percent-escape '%ZZ'"),
        ("a=%", 400, "Invalid percent-escape '%'"),
        ("a=x%4", 400, "Invalid percent-escape '%4'"),
        ("%zz=1", 400, "Invalid percent-escape '%zz'"),
        ("a=%FF", 400, "parameter 'a' of UDF 'fuzz_echo' is not valid UTF-8"),
        ("n=abc", 422, "parameter 'n'"),
        ("zz=1", 422, "Unknown parameter 'zz'"),
    ],
)
def test_bad_query_strings_are_client_errors(server, udfs, query, status, message):
    got, body = _echo(server, udfs["echo"], query)
    assert got == status and message in body["error"]["message"], body


def test_an_int_beyond_int64_in_a_table_is_not_an_internal_error(server, udfs):
    token = _save_with_token(server, "fuzz_big_int", TABLE_UDF.replace("n % 1000", "n"))
    r = requests.get(f"{server.base_url}/realtime-shared/{token}/run/file?n=99999999999999999999999", timeout=30)
    assert r.status_code == 422, r.text
    assert "cannot be sent back: OverflowError" in r.json()["error"]["message"]
