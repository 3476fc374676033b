"""terrafuse's ``fused``-compatible SDK: write, load, cache and run UDFs.

Existing Fused UDF code runs unchanged: ``import fused``, ``@fused.udf``, ``fused.run``,
``fused.cache``, ``fused.load``. See docs/sdk.md for what is supported.
"""

from fused import api, tiles, types
from fused._cache import cache
from fused._errors import (
    FusedError,
    InvalidArgumentError,
    NotFoundError,
    UdfError,
)
from fused._files import download, file_path
from fused._ingest import IngestJobConfig, ingest, ingest_nongeospatial
from fused._load import load
from fused._options import options
from fused._run import run
from fused._secrets import secrets
from fused._storage import delete, upload
from fused._table import get_chunk_from_table, get_chunks_metadata, read_table
from fused._submit import JobPool, submit
from fused._udf import Udf, udf

__version__ = "0.1.0"

__all__ = [
    "FusedError",
    "IngestJobConfig",
    "JobPool",
    "InvalidArgumentError",
    "NotFoundError",
    "Udf",
    "api",
    "UdfError",
    "cache",
    "delete",
    "download",
    "file_path",
    "get_chunk_from_table",
    "get_chunks_metadata",
    "ingest",
    "ingest_nongeospatial",
    "load",
    "options",
    "read_table",
    "run",
    "secrets",
    "submit",
    "tiles",
    "types",
    "udf",
    "upload",
]
