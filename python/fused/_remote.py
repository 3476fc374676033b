"""The remote engine: run UDFs on a terrafuse server over HTTP (``fused.options.base_url``)."""

from __future__ import annotations

import functools
import io
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from fused._errors import FusedError, InvalidArgumentError, UdfError, from_kind
from fused._options import data_home, options

# What the SDK asks for: exact round trips of tables and arrays.
SDK_DTYPE_VECTOR = "parquet"
SDK_DTYPE_RASTER = "npy"


def base_url() -> str:
    if not options.base_url:
        raise InvalidArgumentError(
            "No terrafuse server is configured: set fused.options.base_url "
            "(e.g. 'http://127.0.0.1:8000/server/v1') or run with engine='local'"
        )
    return options.base_url.rstrip("/")


def auth_token() -> str | None:
    """The API token: ``TERRAFUSE_TOKEN``, else ``<data home>/credentials``."""
    token = os.environ.get("TERRAFUSE_TOKEN")
    if token:
        return token.strip()
    path = data_home() / "credentials"
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


# Request bodies (file uploads) go out in pieces of this size: urllib3's 16 KiB default
# costs a Python round trip per piece, which caps an upload near 1 GB/s.
_SEND_BLOCK = 1 << 20


@functools.cache
def _adapter_class() -> type:
    from requests.adapters import HTTPAdapter

    class BigBlocks(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, blocksize=_SEND_BLOCK, **kwargs)

    return BigBlocks


def _session():
    import requests

    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _adapter_class()())
    import fused._worker

    if fused._worker.IN_WORKER:  # a UDF's nested call: the server gives it a worker of its own
        session.headers["X-Terrafuse-Nested"] = "1"
    token = auth_token()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def request(method: str, path: str, *, json_body: Any = None, params: dict | None = None,
            timeout: float = 300, data: Any = None, stream: bool = False) -> Any:
    """Send one request to the server and return the ``requests`` response; errors raise.

    ``data`` (bytes or a file object) is sent as the body, streamed; ``stream`` leaves the
    answer's body unread for ``iter_content``.
    """
    import requests

    url = base_url() + path
    try:
        response = _session().request(method, url, json=json_body, params=params, timeout=timeout, data=data,
                                      stream=stream)
    except requests.ConnectionError as e:
        raise FusedError(f"Cannot reach the terrafuse server at {base_url()}: {e}") from None
    if response.status_code >= 400:
        raise _error_from(response)
    return response


def request_stream(method: str, path: str, **kwargs: Any) -> Any:
    """:func:`request` with the body left to stream; use as a context manager."""
    return request(method, path, stream=True, **kwargs)


def _error_from(response: Any) -> Exception:
    try:
        error = response.json()["error"]
    except Exception:
        metadata = response.headers.get("X-Fused-Metadata", "")
        error = {"kind": "", "message": metadata or f"HTTP {response.status_code} {response.reason}"}
    message = error.get("message", "")
    udf = error.get("udf") or {}
    if udf or error.get("kind") == "udf_failed":
        return UdfError(message, traceback=udf.get("traceback", ""), stdout=udf.get("stdout", ""),
                        stderr=udf.get("stderr", ""))
    kind = error.get("kind") or {404: "not_found", 401: "unauthenticated", 403: "permission_denied",
                                 400: "invalid_argument", 422: "invalid_argument"}.get(response.status_code, "")
    return from_kind(kind, message)


def decode(response: Any) -> Any:
    """Turn a run response back into the Python object the UDF returned."""
    media = response.headers.get("Content-Type", "").split(";")[0].strip()
    body = response.content
    if response.status_code == 204 or not body and media in ("", "application/octet-stream"):
        return None
    if media == "application/vnd.apache.parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(body))
        if table.schema.metadata and b"geo" in table.schema.metadata:
            import geopandas as gpd

            return gpd.GeoDataFrame.from_arrow(table)
        return table.to_pandas()
    if media == "application/x-npy":
        import numpy as np

        array = np.load(io.BytesIO(body), allow_pickle=False)
        bounds = metadata_of(response).get("bounds")
        return (array, bounds) if bounds is not None else array
    if media == "application/json":
        return json.loads(body)
    if media.startswith("text/"):
        return body.decode(response.encoding or "utf-8")
    return io.BytesIO(body)


def metadata_of(response: Any) -> dict:
    try:
        return json.loads(response.headers.get("X-Fused-Metadata", "{}"))
    except ValueError:
        return {}


def run_udf_object(udf: Any, parameters: dict, tile: tuple | None, cache_max_age: Any) -> Any:
    """Run a UDF object's code on the server (what ``fused.run(udf, engine="remote")`` does)."""
    body = {
        "udf": {"name": udf.name, "code": udf.code, "entrypoint": udf.entrypoint,
                "headers": [{"module_name": h.module_name, "source_code": h.source_code} for h in udf.headers]},
        "parameters": {k: _wire_value(v) for k, v in parameters.items()},
        "tile": list(tile) if tile else None,
        "dtype_out_vector": SDK_DTYPE_VECTOR,
        "dtype_out_raster": SDK_DTYPE_RASTER,
        "cache_max_age": cache_max_age,
    }
    return request("POST", "/realtime/fused/api/v1/run/udf/code", json_body=body)


def run_shared(token: str, parameters: dict, tile: tuple | None) -> Any:
    """Run a shared token (``fsh_...``) or public name (``UDF_<Name>``)."""
    quoted = urllib.parse.quote(token, safe="")
    path = f"/realtime-shared/{quoted}/run/" + (f"tiles/{tile[2]}/{tile[0]}/{tile[1]}" if tile else "file")
    params = {k: _wire_value(v) for k, v in parameters.items()}
    params.update(dtype_out_vector=SDK_DTYPE_VECTOR, dtype_out_raster=SDK_DTYPE_RASTER)
    return request("GET", path, params=params)


def _wire_value(value: Any) -> str:
    """Parameters travel as strings, as in a query string."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    module = type(value).__module__.split(".")[0]
    if module == "geopandas":
        return value.to_json()
    if module == "pandas":
        return value.to_json(orient="records")
    if module == "shapely":
        import shapely

        return json.dumps(shapely.geometry.mapping(value))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def credentials_path() -> Path:
    return data_home() / "credentials"


def save_udf(udf: Any, *, public: bool = False) -> dict:
    """Save a UDF on the server (``udf.to_fused()``): its code, header modules and metadata."""
    body = {"name": udf.name, "code": udf.code, "entrypoint": udf.entrypoint,
            "headers": [{"module_name": h.module_name, "source_code": h.source_code} for h in udf.headers],
            "metadata": udf.metadata, "public": public}
    return request("POST", "/udfs", json_body=body).json()


def load_shared(token: str) -> Any:
    """Load the code behind a shared token (when its owner shared it with include_code) or a
    public ``UDF_<Name>``."""
    doc = request("GET", f"/realtime-shared/{urllib.parse.quote(token, safe='')}/udf").json()
    return _udf_from_doc(doc, f"token '{token[:8]}...'")


def _udf_from_doc(doc: dict, origin: str) -> Any:
    from fused._load import _from_code
    from fused._udf import Header, find_entrypoint

    headers = [Header(h["module_name"], h["source_code"]) for h in doc.get("headers", [])]
    entrypoint = find_entrypoint(doc["code"], origin)
    return _from_code(code=doc["code"], name=doc["name"], entrypoint=entrypoint, headers=headers,
                      metadata=doc.get("metadata") or {})


def load_saved(name: str) -> Any:
    """Load a saved UDF's code from the server: ``"name"`` (yours) or ``"owner/name"``."""
    owner, _, udf_name = name.rpartition("/")
    if not owner:
        owner = whoami()
    doc = request("GET", f"/udfs/{urllib.parse.quote(owner, safe='@')}/{urllib.parse.quote(udf_name)}").json()
    return _udf_from_doc(doc, f"saved UDF '{name}'")


def whoami() -> str:
    """The owner behind this machine's API token."""
    saved = request("GET", "/udfs").json()
    if saved:
        return saved[0]["owner"]
    return "local@terrafuse"


class UdfAccessToken:
    """A shared token (``fsh_...``): runs exactly one UDF, over HTTP or with ``fused.run``."""

    def __init__(self, doc: dict):
        self._doc = doc
        self.token = doc["token"]
        self.udf_name = doc.get("udf")

    def get_file_url(self, **params: Any) -> str:
        query = urllib.parse.urlencode({k: _wire_value(v) for k, v in params.items()})
        return f"{base_url()}/realtime-shared/{self.token}/run/file" + (f"?{query}" if query else "")

    def get_tile_url(self, **params: Any) -> str:
        query = urllib.parse.urlencode({k: _wire_value(v) for k, v in params.items()})
        return f"{base_url()}/realtime-shared/{self.token}/run/tiles/{{z}}/{{x}}/{{y}}" + (f"?{query}" if query else "")

    def revoke(self) -> None:
        request("DELETE", f"/tokens/{self.token}")

    def __repr__(self) -> str:
        return f"<UdfAccessToken {self.token[:8]}... for {self.udf_name!r}>"


def create_access_token(udf_name: str, *, enabled: bool = True, cache: bool = True,
                        cache_max_age: Any = None, scope: str = "public", include_code: bool = False,
                        metadata: dict | None = None) -> UdfAccessToken:
    body = {"udf": udf_name, "enabled": enabled, "cache": cache, "cache_max_age": cache_max_age,
            "scope": scope, "include_code": include_code, "metadata": metadata or {}}
    return UdfAccessToken(request("POST", "/tokens", json_body=body).json())
