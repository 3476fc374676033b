"""The Python worker (``python -m fused._worker``) driven directly over a socketpair.

Each reply is checked against a peer: the local engine (``fused.run``) for binding, coercion
and error messages, pyarrow/geopandas for decoded tables.
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import subprocess
import sys
import textwrap
import time

import fused
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fused._udf import Udf
from fused._worker.protocol import MAGIC, read_frame, write_frame


class Worker:
    """A worker process and our end of its socket."""

    def __init__(self, tmp_path, env: dict | None = None):
        self.sock, child = socket.socketpair()
        self.out_path, self.err_path = tmp_path / "worker.out", tmp_path / "worker.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fused._worker"], pass_fds=[child.fileno()],
                env={**os.environ, "TERRAFUSE_WORKER_FD": str(child.fileno()), **(env or {})},
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        child.close()
        self.stream = self.sock.makefile("rb")
        self.sock.settimeout(60)
        self.ready = read_frame(self.stream)[0]
        self.calls = 0

    def run(self, code: str | None, params: dict | None = None, *, name: str = "t", hash: str | None = None,
            tile=None, bounds=None, headers=()) -> tuple[dict, bytes]:
        """One run frame; ``code=None`` names the version by ``hash`` alone, as the server does
        once the worker has it."""
        self.calls += 1
        request_id = f"r{self.calls}"
        udf = {"name": name, "entrypoint": "udf", "hash": hash or ""}
        if code is not None:
            udf |= {"code": code, "headers": [{"module_name": m, "source_code": s} for m, s in headers]}
        write_frame(self.sock, {
            "op": "run", "id": request_id, "udf": udf,
            "params": params or {}, "tile": tile, "bounds": bounds,
        })
        reply, payload = read_frame(self.stream)
        assert reply["id"] == request_id
        return reply, payload

    def close(self) -> int:
        try:
            write_frame(self.sock, {"op": "exit"})
        except OSError:
            pass
        self.stream.close()
        self.sock.close()
        return self.proc.wait(timeout=30)

    def output(self) -> tuple[str, str]:
        return self.out_path.read_text(), self.err_path.read_text()


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("worker"))
    yield w
    w.close()


def udf_code(signature: str, body: str, prelude: str = "") -> str:
    return (f"import fused\n{textwrap.dedent(prelude)}\n@fused.udf\ndef udf({signature}):\n"
            + textwrap.indent(textwrap.dedent(body), "    "))


def local_udf(code: str, name: str = "t") -> Udf:
    return Udf(name=name, code=code, entrypoint="udf")


def read_table(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def to_geodataframe(table: pa.Table):
    from geopandas.io.arrow import _arrow_to_geopandas

    return _arrow_to_geopandas(table)


# -- handshake and life cycle ----------------------------------------------------------------
def test_ready_frame_names_the_process(worker):
    assert worker.ready["op"] == "ready"
    assert worker.ready["pid"] == worker.proc.pid
    assert worker.ready["version"] == fused.__version__


def test_exit_frame_and_end_of_stream_both_exit_cleanly(tmp_path):
    w = Worker(tmp_path)
    assert w.close() == 0
    w = Worker(tmp_path)
    w.stream.close()
    w.sock.close()  # EOF without an exit frame: the server went away
    assert w.proc.wait(timeout=30) == 0


def test_malformed_frame_exits_naming_the_problem(tmp_path):
    w = Worker(tmp_path)
    w.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert w.proc.wait(timeout=30) == 2
    assert "bad frame magic b'GET '" in w.output()[1]


def test_worker_without_its_socket_explains(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fused._worker"], capture_output=True, text=True, check=False,
                            env={k: v for k, v in os.environ.items() if k != "TERRAFUSE_WORKER_FD"}, timeout=60)
    assert result.returncode == 2
    assert "TERRAFUSE_WORKER_FD='' is not a file descriptor number" in result.stderr


def test_unknown_operation_is_an_error_reply(worker):
    write_frame(worker.sock, {"op": "compile", "id": "x"})
    reply, _payload = read_frame(worker.stream)
    assert reply["ok"] is False and reply["id"] == "x"
    assert reply["error"]["kind"] == "invalid_argument"
    assert reply["error"]["message"] == "Unknown worker operation 'compile': expected 'run' or 'exit'"


def test_frame_layout(worker):
    a, b = socket.socketpair()
    write_frame(a, {"k": "é"}, b"xyz")
    raw = b.recv(100)
    header = json.dumps({"k": "é"}, ensure_ascii=False, separators=(",", ":")).encode()
    assert raw == MAGIC + len(header).to_bytes(4, "little") + header + (3).to_bytes(8, "little") + b"xyz"


# -- return kinds ----------------------------------------------------------------------------
def test_dataframe_is_an_arrow_table(worker):
    code = udf_code("n: int = 2", "import pandas as pd\nreturn pd.DataFrame({'i': range(n), 's': ['a'] * n, 'f': [0.5] * n})\n")
    reply, payload = worker.run(code, {"n": "3"})
    assert reply["ok"] and reply["kind"] == "table"
    expected = fused.run(local_udf(code), n=3, cache=False)
    pd.testing.assert_frame_equal(read_table(payload).to_pandas(), expected)


def test_dataframe_with_an_index_keeps_it(worker):
    code = udf_code("", "import pandas as pd\nreturn pd.DataFrame({'v': [1, 2]}, index=pd.Index(['a', 'b'], name='k'))\n")
    _reply, payload = worker.run(code)
    pd.testing.assert_frame_equal(read_table(payload).to_pandas(), fused.run(local_udf(code), cache=False))


def test_geodataframe_is_wkb_with_geoparquet_metadata(worker):
    code = udf_code("n: int = 3", """\
        import geopandas as gpd, shapely
        return gpd.GeoDataFrame({'i': list(range(n)), 'name': [f'p{i}' for i in range(n)]},
                                geometry=[shapely.Point(i, -i) for i in range(n)], crs=3857)
        """)
    reply, payload = worker.run(code, {"n": "4"})
    assert reply["kind"] == "table"
    table = read_table(payload)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["primary_column"] == "geometry"
    assert geo["columns"]["geometry"]["encoding"] == "WKB"
    assert geo["columns"]["geometry"]["geometry_types"] == ["Point"]
    assert geo["columns"]["geometry"]["bbox"] == [0.0, -3.0, 3.0, 0.0]
    expected = fused.run(local_udf(code), n=4, cache=False)
    got = to_geodataframe(table)
    assert got.crs == expected.crs
    pd.testing.assert_frame_equal(pd.DataFrame(got), pd.DataFrame(expected))


@pytest.mark.parametrize("make", [
    ("gpd.GeoDataFrame({'a': [1, 2], 's': ['x', None], 'f': [1.5, float('nan')], 'b': [True, False]},"
    " geometry=[shapely.Point(0, 1), shapely.Point(2, 3, 4)], crs=4326)"),
    "gpd.GeoDataFrame({'a': [1]}, geometry=[None])",
    "gpd.GeoDataFrame({'a': []}, geometry=[], crs=3857)",
    ("gpd.GeoDataFrame({'a': [1], 'g2': gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=3857)},"
    " geometry=[shapely.LineString([(0, 0), (1, 1)])], crs=4326)"),
    "gpd.GeoDataFrame({'a': [1, 2]}, geometry=[shapely.Point(0, 0)] * 2, index=[5, 6])",
    "pd.DataFrame({'a': [1, 2], 'when': pd.to_datetime(['2024-01-01', '2024-01-02'])})",
])
def test_tables_equal_what_geopandas_and_pyarrow_produce(make):
    # The worker's fast conversion must give the same table as the libraries' own.
    import geopandas as gpd
    import shapely
    from fused._worker.to_wire import to_wire
    from geopandas.io.arrow import _geopandas_to_arrow

    frame = eval(make, {"gpd": gpd, "pd": pd, "shapely": shapely})
    _fields, payload = to_wire(frame, "t")
    table = read_table(payload)
    if isinstance(frame, gpd.GeoDataFrame):
        peer = _geopandas_to_arrow(frame, index=None, geometry_encoding="WKB")
        assert json.loads(table.schema.metadata[b"geo"]) == json.loads(peer.schema.metadata[b"geo"])
        for name in peer.schema.names:
            assert table.schema.field(name).metadata == peer.schema.field(name).metadata
    else:
        peer = pa.Table.from_pandas(frame)
    assert table.equals(peer)


def test_series_geoseries_and_geometry_become_tables(worker):
    _, payload = worker.run(udf_code("", "import pandas as pd\nreturn pd.Series([1, 2], name='v')\n"))
    assert read_table(payload).to_pydict() == {"v": [1, 2]}
    _, payload = worker.run(udf_code("", "import pandas as pd\nreturn pd.Series([1, 2])\n"))
    assert read_table(payload).column_names == ["value"]
    _, payload = worker.run(udf_code("", "import geopandas as gpd, shapely\n"
                                             "return gpd.GeoSeries([shapely.Point(1, 2)])\n"))
    got = to_geodataframe(read_table(payload))
    assert got.crs.to_epsg() == 4326 and got.geometry[0].equals(__import__("shapely").Point(1, 2))
    __, payload = worker.run(udf_code("", "import shapely\nreturn shapely.box(0, 0, 1, 1)\n"))
    got = to_geodataframe(read_table(payload))
    assert len(got) == 1 and got.crs.to_epsg() == 4326 and got.geometry[0].area == 1


def test_arrow_table_passes_through(worker):
    reply, payload = worker.run(udf_code("", "import pyarrow as pa\nreturn pa.table({'x': [1, 2, 3]})\n"))
    assert reply["kind"] == "table" and read_table(payload).to_pydict() == {"x": [1, 2, 3]}


@pytest.mark.parametrize(("body", "shape", "dtype", "bounds"), [
    ("return np.arange(12, dtype='uint8').reshape(3, 4)", [3, 4], "uint8", None),
    ("return np.ones((2, 3, 4), dtype='float32')", [2, 3, 4], "float32", None),
    ("return np.zeros((4, 4), dtype='>i2')", [4, 4], "int16", None),
    ("return np.arange(16, dtype='uint8').reshape(4, 4)[:, ::2]", [4, 2], "uint8", None),
    ("return np.zeros((2, 2), dtype=bool), [0, 1, 2, 3]", [2, 2], "bool", [0.0, 1.0, 2.0, 3.0]),
])
def test_arrays_are_rasters(worker, body, shape, dtype, bounds):
    code = udf_code("", body, prelude="import numpy as np")
    reply, payload = worker.run(code)
    assert reply["ok"] and reply["kind"] == "raster"
    assert (reply["shape"], reply["dtype"], reply["bounds"]) == (shape, dtype, bounds)
    expected = fused.run(local_udf(code), cache=False)
    expected = np.ascontiguousarray(expected[0] if isinstance(expected, tuple) else expected)
    np.testing.assert_array_equal(np.frombuffer(payload, dtype=dtype).reshape(shape), expected.astype(dtype))


def test_large_raster_arrives_whole(worker):
    _reply, payload = worker.run(udf_code("", "import numpy as np\nreturn np.full((4, 1024, 1024), 7, dtype='uint8')\n"))
    assert len(payload) == 4 << 20 and payload[-1] == 7


def test_xarray_is_a_raster_with_bounds_from_its_coordinates(worker):
    pytest.importorskip("xarray")
    code = udf_code("", """\
        import numpy as np, xarray as xr
        data = xr.DataArray(np.arange(6, dtype='float64').reshape(2, 3), dims=('y', 'x'),
                            coords={'y': [10.5, 11.5], 'x': [0.5, 1.5, 2.5]})
        return data
        """)
    reply, payload = worker.run(code)
    assert (reply["kind"], reply["shape"], reply["dtype"]) == ("raster", [2, 3], "float64")
    assert reply["bounds"] == [0.0, 10.0, 3.0, 12.0]
    assert np.frombuffer(payload).tolist() == [0, 1, 2, 3, 4, 5]
    reply, payload = worker.run(udf_code("", "import numpy as np, xarray as xr\n"
                                             "return xr.Dataset({'b': (('y', 'x'), np.ones((2, 2), 'uint8'))})\n"))
    assert (reply["kind"], reply["shape"], reply["dtype"], reply["bounds"]) == ("raster", [2, 2], "uint8", None)


@pytest.mark.parametrize(("body", "expected"), [
    ("return {'a': [1, 2.5, None, True], 'b': {'c': 'd'}}", {"a": [1, 2.5, None, True], "b": {"c": "d"}}),
    ("return [1, 'two']", [1, "two"]),
    ("return (1, 2)", [1, 2]),
    ("return 42", 42),
    ("return 2.5", 2.5),
    ("return False", False),
    ("return 'plain text'", "plain text"),
    ("return {'nan': float('nan'), 'np': np.int64(3), 'arr': np.arange(2)}", {"nan": None, "np": 3, "arr": [0, 1]}),
    ("return np.float32(1.5)", 1.5),
])
def test_plain_values_are_json(worker, body, expected):
    reply, payload = worker.run(udf_code("", body, prelude="import numpy as np"))
    assert reply["ok"] and reply["kind"] == "json"
    assert json.loads(payload) == expected


def test_html_bytes_responses_and_none(worker):
    reply, payload = worker.run(udf_code("", "return '  <h1>hi</h1>'"))
    assert (reply["kind"], reply["media_type"], payload) == ("html", "text/html; charset=utf-8", b"  <h1>hi</h1>")
    reply, payload = worker.run(udf_code("", "import io\nreturn io.BytesIO(b'\\x00\\x01raw')"))
    assert (reply["kind"], reply["media_type"], payload) == ("bytes", "application/octet-stream", b"\x00\x01raw")
    reply, payload = worker.run(udf_code("", """\
        class Response:
            body = b'a,b\\n1,2\\n'
            media_type = 'text/csv'
        return Response()
        """))
    assert (reply["kind"], reply["media_type"], payload) == ("bytes", "text/csv", b"a,b\n1,2\n")
    reply, payload = worker.run(udf_code("", "return None"))
    assert (reply["kind"], payload) == ("none", b"")


# -- parameters: exactly as the local engine ---------------------------------------------------
def test_string_parameters_are_coerced_like_the_local_engine(worker):
    code = udf_code("n: int, x: float = 0.0, flag: bool = False, items: list = None, "
                    "choice: typing.Literal['a', 'b'] = 'a', opt: typing.Optional[int] = None, raw='?'",
                    "return {'n': n, 'x': x, 'flag': flag, 'items': items, 'choice': choice, 'opt': opt, 'raw': raw}",
                    prelude="import typing")
    params = {"n": "7", "x": "2.5", "flag": "yes", "items": "[1, 2]", "choice": "b", "opt": "null", "raw": "3"}
    reply, payload = worker.run(code, params)
    assert reply["ok"], reply
    assert json.loads(payload) == fused.run(local_udf(code), cache=False, **params)


@pytest.mark.parametrize("params", [{"nope": "1"}, {"n": "abc"}, {"n": "1", "flag": "maybe"}])
def test_bad_parameters_give_the_local_engines_message(worker, params):
    code = udf_code("n: int = 1, flag: bool = False", "return n")
    reply, _ = worker.run(code, params)
    assert reply["ok"] is False and reply["error"]["kind"] == "invalid_argument"
    with pytest.raises(fused.InvalidArgumentError) as local:
        fused.run(local_udf(code), cache=False, **params)
    assert reply["error"]["message"] == str(local.value)
    assert reply["error"]["type"] == "InvalidArgumentError"


def test_tile_and_bounds_bind_like_the_local_engine(worker):
    code = udf_code("bounds: fused.types.Bounds = None, n: int = 0", "return {'bounds': bounds, 'n': n}")
    _, payload = worker.run(code, {"n": "1"}, tile=[1, 2, 3])
    assert json.loads(payload) == fused.run(local_udf(code), x=1, y=2, z=3, n="1", cache=False)
    _, payload = worker.run(code, bounds=[-1, -2, 3, 4])
    assert json.loads(payload) == {"bounds": [-1.0, -2.0, 3.0, 4.0], "n": 0}
    xyz = udf_code("x: int, y: int, z: int", "return [x, y, z]")  # Fused >= 1.15: ordinary parameters
    _, payload = worker.run(xyz, tile=[4, 5, 6])
    assert json.loads(payload) == fused.run(local_udf(xyz), x=4, y=5, z=6, cache=False) == [4, 5, 6]
    legacy = udf_code("bbox: fused.types.TileGDF = None", "return [int(bbox.x[0]), int(bbox.y[0]), int(bbox.z[0])]")
    __, payload = worker.run(legacy, tile=[5, 6, 7])
    assert json.loads(payload) == [5, 6, 7]


def test_header_modules_are_importable(worker):
    code = udf_code("", "import utils\nreturn utils.greet('x')")
    _reply, payload = worker.run(code, headers=[("utils", "def greet(n):\n    return 'hello ' + n\n")])
    assert json.loads(payload) == "hello x"


# -- failures --------------------------------------------------------------------------------
def test_udf_exception_is_udf_failed_with_its_traceback_and_output(worker):
    code = udf_code("", """\
        import sys
        print('before the fall')
        print('careful', file=sys.stderr)
        return helper()
        """, prelude="def helper():\n    return 1 / 0\n")
    reply, payload = worker.run(code, name="faller")
    assert reply["ok"] is False and payload == b""
    error = reply["error"]
    assert error["kind"] == "udf_failed" and error["type"] == "ZeroDivisionError"
    assert error["message"] == "UDF 'faller' raised ZeroDivisionError: division by zero"
    assert "return helper()" in error["traceback"] and "return 1 / 0" in error["traceback"]
    assert "fused/" not in error["traceback"], "engine frames must not show"
    assert (reply["stdout"], reply["stderr"]) == ("before the fall\n", "careful\n")
    assert worker.run(udf_code("", "return 1"))[0]["ok"], "the worker keeps serving"


def test_invalid_output_uses_the_local_engines_message(worker):
    code = udf_code("", "return {1, 2}")
    reply, _ = worker.run(code)
    assert reply["error"]["kind"] == "invalid_argument"
    with pytest.raises(fused.InvalidArgumentError) as local:
        fused.run(local_udf(code), cache=False)
    assert reply["error"]["message"] == str(local.value)


@pytest.mark.parametrize(("code", "kind", "type_name", "message"), [
    ("def udf(:\n", "udf_failed", "SyntaxError", "UDF 't' raised SyntaxError"),
    ("import fused\nraise RuntimeError('module level')\n", "udf_failed", "RuntimeError",
     "UDF 't' raised RuntimeError: module level"),
    ("import fused\n@fused.udf\ndef other():\n    return 1\n", "invalid_argument", "InvalidArgumentError",
     "UDF 't' has no function named 'udf'"),
    (udf_code("", "raise SystemExit(3)"), "udf_failed", "SystemExit", "UDF 't' raised SystemExit: 3"),
    (udf_code("", "raise KeyError('k')"), "udf_failed", "KeyError", "UDF 't' raised KeyError: 'k'"),
    (udf_code("", "raise KeyboardInterrupt"), "udf_failed", "KeyboardInterrupt", "UDF 't' raised KeyboardInterrupt"),
    ("import fused\nraise SystemExit(4)\n", "udf_failed", "SystemExit", "UDF 't' raised SystemExit: 4"),
])
def test_code_that_cannot_run_is_reported(worker, code, kind, type_name, message):
    reply, _ = worker.run(code)
    assert (reply["error"]["kind"], reply["error"]["type"]) == (kind, type_name)
    assert reply["error"]["message"].startswith(message)
    assert worker.run(udf_code("", "return 1"))[0]["ok"]


def test_memory_error_asks_to_be_recycled(worker):
    reply, _ = worker.run(udf_code("", "raise MemoryError()"))
    assert reply["error"]["type"] == "MemoryError" and reply["recycle"] is True
    reply, _ = worker.run(udf_code("", "raise ValueError('x')"))
    assert "recycle" not in reply


def test_udf_output_never_reaches_the_workers_stdout_or_stderr(tmp_path):
    w = Worker(tmp_path)
    code = udf_code("", """\
        import sys, warnings, logging
        print('LEAK-OUT')
        print('LEAK-ERR', file=sys.stderr)
        warnings.warn('LEAK-WARN')
        logging.getLogger('udf').warning('LEAK-LOG')
        return 1
        """, prelude="print('LEAK-MODULE')")
    reply, _ = w.run(code)
    assert reply["stdout"] == "LEAK-MODULE\nLEAK-OUT\n"
    assert "LEAK-ERR" in reply["stderr"] and "LEAK-WARN" in reply["stderr"] and "LEAK-LOG" in reply["stderr"]
    assert w.close() == 0
    out, err = w.output()
    assert out == "", "the worker's stdout must stay empty (the server's log)"
    assert "LEAK" not in err


# -- caching of compiled code ------------------------------------------------------------------
def test_module_code_runs_once_per_hash(worker):
    code = udf_code("", "return fused._tf_loads",
                    prelude="fused._tf_loads = getattr(fused, '_tf_loads', 0) + 1\nprint('loading')")
    first, payload1 = worker.run(code, hash="cache-test-1")
    second, payload2 = worker.run(code, hash="cache-test-1")
    assert json.loads(payload1) == json.loads(payload2)
    assert first["stdout"] == "loading\n" and second["stdout"] == ""
    _third, payload3 = worker.run(code, hash="cache-test-2")
    assert json.loads(payload3) == json.loads(payload1) + 1
    # No hash: the worker hashes the code itself, and still executes it once.
    fourth, _ = worker.run(code)
    fifth, _ = worker.run(code)
    assert fourth["stdout"] == "loading\n" and fifth["stdout"] == ""


def test_a_version_it_has_runs_by_hash_alone_and_one_it_lacks_asks_for_its_code(worker):
    code = udf_code("n: int = 1", "return n * 2", prelude="print('loading')")
    assert worker.run(code, {"n": "2"}, hash="by-hash-1")[0]["stdout"] == "loading\n"
    reply, payload = worker.run(None, {"n": "5"}, hash="by-hash-1")
    assert reply["ok"] and reply["stdout"] == "" and json.loads(payload) == 10
    reply, payload = worker.run(None, {"n": "5"}, hash="never-sent")
    assert not reply["ok"] and reply["error"]["kind"] == "code_needed" and payload == b""
    assert "never-sent" in reply["error"]["message"]


def test_code_cache_is_bounded(worker):
    from fused._worker.host import UDF_CACHE_SIZE

    code = udf_code("", "return 1", prelude="print('loaded')")
    assert worker.run(code, hash="lru-0")[0]["stdout"] == "loaded\n"
    for i in range(1, UDF_CACHE_SIZE + 1):
        worker.run(code, hash=f"lru-{i}")
    assert worker.run(code, hash=f"lru-{UDF_CACHE_SIZE}")[0]["stdout"] == ""
    assert worker.run(code, hash="lru-0")[0]["stdout"] == "loaded\n", "the oldest entry was evicted"


def test_warm_calls_are_fast(worker):
    code = udf_code("n: int = 1", "return n")
    worker.run(code, {"n": "1"}, hash="fast")
    start = time.perf_counter()
    for _ in range(200):
        worker.run(code, {"n": "1"}, hash="fast")
    per_call = (time.perf_counter() - start) / 200
    assert per_call < 0.002, f"{per_call * 1e6:.0f} us per warm call"


def test_worker_does_not_import_fused_worker_on_plain_import(run_python):
    out = run_python("import sys, fused; print('fused._worker.host' in sys.modules)").stdout
    assert out.strip() == "False"


def test_payload_limit_is_enforced_by_the_worker(tmp_path):
    w = Worker(tmp_path, env={"TERRAFUSE_WORKER_MAX_PAYLOAD": "100"})
    reply, _payload = w.run(udf_code("", "import io\nreturn io.BytesIO(b'x' * 101)"))
    assert reply["error"]["kind"] == "invalid_argument"
    assert reply["error"]["message"] == ("UDF 't' returned 101 bytes of bytes: more than the server's reply "
                                         "limit of 100 bytes")
    # The limit counts bytes, not rows: a 3x6x6 image is 108 bytes.
    reply, _payload = w.run(udf_code("", "import numpy as np\nreturn np.zeros((3, 6, 6), dtype=np.uint8)"))
    assert reply["error"]["message"].startswith("UDF 't' returned 108 bytes of ")
    assert w.close() == 0


def test_binary_payload_types(worker):
    reply, payload = worker.run(udf_code("", "return b'\\x00raw'"))
    assert (reply["kind"], payload) == ("bytes", b"\x00raw")
    _ = io  # io.BytesIO is covered in test_html_bytes_responses_and_none


# -- batches ---------------------------------------------------------------------------------
def test_replies_to_a_batch_are_held_until_its_last_call(worker):
    """Frames marked "more" (the server sent further calls behind them) get their replies in
    one write after the last call of the batch; a call that takes long is answered at once."""
    code = udf_code("n: int = 0, pause: float = 0", """
        import time
        time.sleep(pause)
        return n
    """)
    worker.run(code, hash="batch-v1")

    def send(n: int, more: bool, pause: float = 0) -> None:
        header = {"op": "run", "id": f"b{n}", "udf": {"name": "t", "hash": "batch-v1"},
                  "params": {"n": str(n), "pause": str(pause)}}
        if more:
            header["more"] = True
        write_frame(worker.sock, header)

    def replied_within(seconds: float) -> bool:
        ready, _, _ = select.select([worker.sock], [], [], seconds)
        return bool(ready)

    # Only calls under 2 ms are held: on a loaded machine a trivial one can take longer, and
    # its reply then goes at once (it must say so in its "seconds"); try again.
    for attempt in range(5):
        send(1, more=True)
        send(2, more=True)
        if not replied_within(0.3):  # held: the batch is not over
            break
        send(3, more=False)
        replies = [read_frame(worker.stream)[0] for _ in range(3)]
        assert [r["id"] for r in replies] == ["b1", "b2", "b3"]
        assert max(r["seconds"] for r in replies[:2]) >= 0.002, "a short call's reply was not held"
    else:
        pytest.fail("every attempt had a call over 2 ms")
    send(3, more=False)
    assert [read_frame(worker.stream)[0]["id"] for _ in range(3)] == ["b1", "b2", "b3"]
    assert json.loads(worker.run(None, {"n": "4"}, hash="batch-v1")[1]) == 4

    send(5, more=True, pause=0.05)  # long enough not to be held
    assert replied_within(5)
    reply, payload = read_frame(worker.stream)
    assert (reply["id"], json.loads(payload)) == ("b5", 5)


def test_each_call_of_a_batch_has_its_own_output_and_reply(worker):
    """Replies written without the JSON encoder (the common ones) and the capture kept in place
    between calls still give every call of a batch exactly its own output, id and timing."""
    code = udf_code("n: int = 0", """
        import sys
        if n % 2:
            print(f"out {n} \\u00e9\\ud800", end="")
            print(f"err {n}", file=sys.stderr)
        if n == 3:
            raise ValueError(f"bad {n}")
        return n
    """)
    worker.run(code, hash="batch-out")
    ids = ["plain", 'quote"and\\slash', "é", "x"]
    frames = b""
    for n, request_id in enumerate(ids):
        header = {"op": "run", "id": request_id, "udf": {"name": "t", "hash": "batch-out"}, "params": {"n": str(n)}}
        if n < len(ids) - 1:
            header["more"] = True
        frames += MAGIC + len(raw := json.dumps(header).encode()).to_bytes(4, "little") + raw + bytes(8)
    worker.sock.sendall(frames)
    replies = [read_frame(worker.stream) for _ in ids]
    assert [r["id"] for r, _ in replies] == ids
    assert [(r["stdout"], r["stderr"]) for r, _ in replies] == [
        ("", ""), ("out 1 \u00e9?", "err 1\n"), ("", ""), ("out 3 \u00e9?", "err 3\n")]
    assert [json.loads(p) for r, p in replies[:3]] == [0, 1, 2]
    assert replies[3][0]["error"]["kind"] == "udf_failed" and "bad 3" in replies[3][0]["error"]["message"]
    assert all(type(r["seconds"]) is float and 0 <= r["seconds"] < 5 for r, _ in replies)


def test_output_is_captured_after_a_udf_replaced_sys_stdout(worker):
    """The worker keeps its capture routers installed between calls; a UDF that swaps
    sys.stdout for its own stream does not stop the next calls' output being captured."""
    swap = udf_code("", """
        import io, sys
        sys.stdout = io.StringIO()
        print("into the udf's own stream")
        return 1
    """)
    talk = udf_code("n: int = 0", "print(f'call {n}')\nreturn n")
    assert worker.run(swap, hash="swap")[0]["stdout"] == ""
    assert [worker.run(talk, {"n": str(n)}, hash="talk")[0]["stdout"] for n in range(3)] == [
        "call 0\n", "call 1\n", "call 2\n"]
