"""``fused.api``: the server API of the Fused SDK (``FusedAPI``, access tokens)."""

from __future__ import annotations

from typing import Any

from fused._jobs import (
    Jobs,
    RunResponse,
    get_jobs,
    job_cancel,
    job_get_exec_time,
    job_get_logs,
    job_get_status,
    job_print_logs,
    job_tail_logs,
    job_wait_for_job,
    start_job,
)
from fused._remote import UdfAccessToken, create_access_token, whoami
from fused._storage import FileDetails, delete, download, get, sign_url, sign_url_prefix, upload
from fused._storage import list  # noqa: A004 - Fused's name


class FusedAPI:
    """Client of a terrafuse server.

    Parameters
    ----------
    base_url : str, optional
        ``http://HOST:PORT/server/v1``; sets ``fused.options.base_url`` when given.
    set_global_api, credentials_needed : bool
        Accepted for compatibility.
    """

    def __init__(self, *, base_url: str | None = None, set_global_api: bool = True,
                 credentials_needed: bool = True) -> None:
        if base_url is not None:
            from fused._options import options

            options.base_url = base_url

    def create_udf_access_token(
        self,
        udf_email_or_name_or_id: str | None = None,
        udf_name: str | None = None,
        *,
        udf_email: str | None = None,
        udf_id: str | None = None,
        client_id: Any = None,
        cache: bool = True,
        metadata_json: dict | None = None,
        enabled: bool = True,
    ) -> UdfAccessToken:
        """Create a shared token (``fsh_...``) for one of your saved UDFs."""
        name = udf_name or udf_id or udf_email_or_name_or_id
        if not name:
            raise ValueError("create_udf_access_token needs the name of a saved UDF")
        name = name.rpartition("/")[2]  # "email/name" -> the caller's UDF "name"
        return create_access_token(name, cache=cache, metadata=metadata_json, enabled=enabled)

    # -- files ---------------------------------------------------------------------------
    def upload(self, path: str, data: Any) -> None:
        """Upload bytes or a binary file object to ``path`` (``fd://...``)."""
        upload(data, path)

    def list(self, path: str, *, details: bool = False) -> Any:  # noqa: A003
        """List a directory (see :func:`fused.api.list`)."""
        return list(path, details=details)

    def get(self, path: str) -> bytes:
        """Return a file's bytes (see :func:`fused.api.get`)."""
        return get(path)

    def download(self, path: str, local_path: Any) -> None:
        """Download a file (see :func:`fused.api.download`)."""
        download(path, local_path)

    def delete(self, path: str, max_deletion_depth: Any = 2) -> bool:
        """Delete a file or directory (see :func:`fused.api.delete`)."""
        return delete(path, max_deletion_depth=max_deletion_depth)

    def sign_url(self, path: str) -> str:
        """Return a signed URL (see :func:`fused.api.sign_url`)."""
        return sign_url(path)

    def sign_url_prefix(self, path: str) -> dict:
        """Return signed URLs under a prefix (see :func:`fused.api.sign_url_prefix`)."""
        return sign_url_prefix(path)

    # -- jobs ---------------------------------------------------------------------------
    def start_job(self, config: Any, *, instance_type: str | None = None, region: str | None = None,
                  disk_size_gb: int | None = None, additional_env: Any = None,
                  image_name: str | None = None) -> RunResponse:
        """Start a job config (``udf(arg_list=...)``, an ingest config) on the server."""
        return config.run_remote()

    def get_jobs(self, n: int = 5, *, skip: int = 0, per_request: int = 25,
                 max_requests: int | None = 1) -> Jobs:
        return get_jobs(n, skip=skip, per_request=per_request, max_requests=max_requests)

    def get_status(self, job: Any) -> RunResponse:
        return job_get_status(job)

    def get_logs(self, job: Any, since_ms: int | None = None) -> list:
        return job_get_logs(job, since_ms)

    def tail_logs(self, job: Any, refresh_seconds: float = 1, sample_logs: bool = True,
                  timeout: float | None = None, get_logs_retries: int = 1) -> RunResponse:
        return job_tail_logs(job, refresh_seconds, sample_logs, timeout, get_logs_retries)

    def wait_for_job(self, job: Any, poll_interval_seconds: float = 5, timeout: float | None = None) -> RunResponse:
        return job_wait_for_job(job, poll_interval_seconds, timeout)

    def cancel_job(self, job: Any) -> RunResponse:
        return job_cancel(job)


__all__ = [
    "FileDetails",
    "FusedAPI",
    "Jobs",
    "RunResponse",
    "UdfAccessToken",
    "delete",
    "download",
    "get",
    "get_jobs",
    "job_cancel",
    "job_get_exec_time",
    "job_get_logs",
    "job_get_status",
    "job_print_logs",
    "job_tail_logs",
    "job_wait_for_job",
    "list",
    "sign_url",
    "sign_url_prefix",
    "start_job",
    "upload",
    "whoami",
]
