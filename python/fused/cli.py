"""The ``terrafuse`` command: serve and run UDFs, run examples, manage secrets, show settings."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"terrafuse: parameters are name=value, got {pair!r}")
        params[name] = value
    return params


def _show(result) -> str:
    import pandas as pd

    data = result.data
    if isinstance(data, pd.DataFrame):
        return f"{type(data).__name__} with {len(data)} rows\n{data.head(10).to_string()}"
    return repr(data)[:2000]


def cmd_serve(args: argparse.Namespace) -> int:
    from fused._server import serve

    if not args.examples:
        # Replaces this process, so signals and the exit code are terrafused's own.
        serve(host=args.host, port=args.port, home=args.home, workers=args.workers,
              threads=args.threads, log_level=args.log_level)
        return 0  # not reached
    return _serve_with_examples(args)


def _serve_with_examples(args: argparse.Namespace) -> int:
    """Start terrafused, publish the example UDFs as public ``UDF_<Name>``, print their URLs,
    then stay in the foreground until Ctrl-C / SIGTERM (forwarded to the server)."""
    import os
    import signal
    import threading

    import fused
    from fused import _remote
    from fused._server import start_server

    folders = sorted(p for p in Path(args.examples).iterdir() if (p / "meta.json").is_file())
    server = start_server(host=args.host, port=args.port if args.port is not None else 8000, home=args.home,
                          workers=args.workers, threads=args.threads, log_level=args.log_level,
                          env=dict(os.environ), startup_timeout=120)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        os.environ["TERRAFUSE_TOKEN"] = (server.home / "credentials").read_text().strip()
        fused.options.base_url = server.base_url
        print(f"terrafuse: serving at {server.base_url}", flush=True)
        for folder in folders:
            udf = fused.load(folder)
            _remote.save_udf(udf, public=True)
            mode = "tiles/{z}/{x}/{y}" if udf.udf_type == "tile" else "file"
            print(f"  UDF_{udf.name}: {server.base_url}/realtime-shared/UDF_{udf.name}/run/{mode}", flush=True)
        for line in server.log():
            if line.startswith("terrafused workbench: "):  # the link carries the local token
                print(f"terrafuse: workbench at {line.split(': ', 1)[1]}", flush=True)
        print("terrafuse: press Ctrl-C to stop", flush=True)
        while not stop.is_set() and server.process.poll() is None:
            stop.wait(0.5)
    finally:
        code = server.stop()
    return code


def cmd_run(args: argparse.Namespace) -> int:
    import fused

    result = fused.run(fused.load(args.udf), engine="local", cache=not args.no_cache,
                       _return_response=True, **_parse_params(args.params))
    print(_show(result))
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    import fused

    folders = sorted(p for p in Path(args.dir).iterdir() if (p / "meta.json").is_file())
    if not folders:
        print(f"terrafuse: no UDF folders (with meta.json) under {args.dir}", file=sys.stderr)
        return 1
    failed = 0
    for folder in folders:
        print(f"=== {folder.name}")
        try:
            result = fused.run(fused.load(folder), engine="local", _return_response=True)
        except fused.FusedError as e:
            failed += 1
            print(f"FAILED: {e}")
            continue
        hit = " (cached)" if result.cache_hit else ""
        print(f"{_show(result)}\n--- {result.seconds * 1000:.1f} ms{hit}")
    print(f"{len(folders) - failed} of {len(folders)} example UDFs ran")
    return 1 if failed else 0


def cmd_secrets(args: argparse.Namespace) -> int:
    from fused._secrets import _read_store, write_store

    values = _read_store()
    if args.action == "list":
        for name in sorted(values):
            print(name)
    elif args.action == "set":
        value = args.value if args.value is not None else getpass.getpass(f"Value of {args.name}: ")
        values[args.name] = value
        write_store(values)
    elif args.action == "delete":
        if values.pop(args.name, None) is None:
            print(f"terrafuse: secret {args.name!r} is not set", file=sys.stderr)
            return 1
        write_store(values)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    import fused
    from fused import _jobs

    if args.url:
        fused.options.base_url = args.url
    if args.action == "list":
        for job in _jobs.get_jobs(args.n, max_requests=None):
            print(repr(job))
        return 0
    if not args.id:
        print(f"terrafuse: jobs {args.action} needs a job id", file=sys.stderr)
        return 2
    job = _jobs.RunResponse({"id": args.id, "status": "unknown"})
    if args.action == "status":
        job.get_status()
        print(repr(job))
        for task in job.task_list:
            error = f" {task['error'].splitlines()[0]}" if task["error"] else ""
            print(f"  task {task['index']}: {task['status']} (attempts {task['attempts']}){error}")
        return 0 if job.status != "failed" else 1
    if args.action == "logs":
        if args.follow:
            job.tail_logs()
        else:
            job.print_logs()
        return 0
    job.cancel()  # "cancel"
    print(repr(job))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import fused

    print(repr(fused.options))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="terrafuse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (terrafused) in the foreground")
    # Values pass through as strings: terrafused validates them and names a bad one.
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", help="port to listen on (default 8000; 0 picks a free one)")
    serve.add_argument("--home", help="data home (default $TERRAFUSE_HOME, else ~/.terrafuse)")
    serve.add_argument("--workers", help="Python worker processes (default: one per core)")
    serve.add_argument("--threads", help="handler threads (default: two per core, at least 4)")
    serve.add_argument("--log-level", help="debug, info, warn or error (default: $TERRAFUSE_LOG)")
    serve.add_argument("--examples", metavar="DIR",
                       help="publish every UDF folder in DIR as a public UDF_<Name> and print its URL")
    serve.set_defaults(func=cmd_serve)

    run = sub.add_parser("run", help="run a UDF (folder, .zip, .py or GitHub URL) locally")
    run.add_argument("udf")
    run.add_argument("params", nargs="*", help="UDF parameters as name=value")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    run.set_defaults(func=cmd_run)

    examples = sub.add_parser("examples", help="run every example UDF folder and print the results")
    examples.add_argument("--dir", default=str(Path.cwd() / "examples" / "udfs"))
    examples.set_defaults(func=cmd_examples)

    secrets = sub.add_parser("secrets", help="manage the local secret store (fused.secrets)")
    secrets.add_argument("action", choices=["list", "set", "delete"])
    secrets.add_argument("name", nargs="?")
    secrets.add_argument("value", nargs="?", help="omit to be prompted")
    secrets.set_defaults(func=cmd_secrets)

    jobs = sub.add_parser("jobs", help="batch jobs on the server: list, status, logs, cancel")
    jobs.add_argument("action", choices=["list", "status", "logs", "cancel"])
    jobs.add_argument("id", nargs="?", help="the job id (all but list)")
    jobs.add_argument("-n", type=int, default=10, help="list: how many jobs (newest first)")
    jobs.add_argument("--follow", "-f", action="store_true", help="logs: print new lines until the job ends")
    jobs.add_argument("--url", help="the server's API URL (default fused.options.base_url / $TERRAFUSE_BASE_URL)")
    jobs.set_defaults(func=cmd_jobs)

    config = sub.add_parser("config", help="print the effective settings")
    config.set_defaults(func=cmd_config)

    args = parser.parse_args(argv)
    if getattr(args, "action", None) in ("set", "delete") and not args.name:
        parser.error(f"secrets {args.action} needs a NAME")
    try:
        return args.func(args)
    except Exception as e:  # one line for the terminal, not a Python traceback
        from fused._errors import FusedError

        if not isinstance(e, (FusedError, OSError, ValueError, KeyError)):
            raise
        print(f"terrafuse: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
