"""Entry point of a worker process: ``TERRAFUSE_WORKER_FD=<fd> python -m fused._worker``.

The server passes one end of a connected ``AF_UNIX`` stream socket as file descriptor
``TERRAFUSE_WORKER_FD``. The worker's own stdout is pointed at its stderr first, so nothing
it or a library prints can reach the server's stdout; what UDFs print is captured into replies.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    fd = os.environ.get("TERRAFUSE_WORKER_FD", "")
    if not fd.isdigit():
        sys.stderr.write(f"fused._worker: TERRAFUSE_WORKER_FD={fd!r} is not a file descriptor number: "
                         "workers are started by terrafused, which passes a connected socket\n")
        return 2
    os.dup2(2, 1)
    from fused._worker.host import serve

    return serve(int(fd))


if __name__ == "__main__":
    code = main()
    sys.__stderr__.flush()
    # Skip interpreter teardown: it is slow with the scientific stack loaded, and threads a
    # UDF left running must not keep the worker alive.
    os._exit(code)
