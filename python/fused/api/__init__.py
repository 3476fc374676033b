"""``fused.api``: the server API of the Fused SDK (``FusedAPI``, access tokens)."""

from __future__ import annotations

from typing import Any

from fused._remote import UdfAccessToken, create_access_token, whoami


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


__all__ = ["FusedAPI", "UdfAccessToken", "whoami"]
