"""The UDF host started by terrafused: ``python -m fused._worker`` (docs/design/server.md).

Nothing is imported here: ``python -m fused._worker`` imports the heavy libraries itself,
once, before it tells the server it is ready.
"""

# True inside a worker process (set by host.serve): fused.submit(engine="local") then runs its
# calls in threads of this worker instead of starting a pool of its own.
IN_WORKER = False
