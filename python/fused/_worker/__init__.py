"""The UDF host started by terrafused: ``python -m fused._worker`` (docs/design/server.md).

Nothing is imported here: ``python -m fused._worker`` imports the heavy libraries itself,
once, before it tells the server it is ready.
"""
