"""``fused.utils``: older Fused SDK names kept for the public catalog's helpers."""

from fused._table import get_chunk_from_table, get_chunks_metadata

__all__ = ["get_chunk_from_table", "get_chunks_metadata"]
