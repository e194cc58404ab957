"""`orchestrator serve`: check everything, then hand the app to uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from ..errors import UsageError

DEFAULT_PORT = 8000


def add_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="serve workflows over an OpenAI-compatible API and a runs API"
    )
    serve.add_argument(
        "workflows", nargs="*", metavar="WORKFLOW", help="workflow YAML files (default: shipped)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8000)")
    serve.add_argument(
        "--api-key",
        help="bearer key clients must send (default: $ORCHESTRATOR_SERVE_KEY); required to "
        "bind anything but loopback",
    )
    serve.add_argument(
        "--max-concurrent-runs", type=int, default=64, help="runs at once; beyond: 429 (64)"
    )
    serve.add_argument(
        "--max-body-bytes", type=int, default=1 << 20, help="largest request body (1 MiB)"
    )
    serve.add_argument(
        "--resume-interrupted",
        action="store_true",
        help="continue the runs a previous server left interrupted",
    )
    serve.add_argument("--quiet", action="store_true", help="no access log")


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import ServeConfig, create_app, load_served
        from ..serve.config import check_bind, check_limits, resolve_key
    except ImportError as exc:
        raise UsageError(
            f"orchestrator serve needs the serve extra ({exc.name} is missing): "
            "pip install 'orchestrator[serve]'"
        ) from None
    check_limits(args.max_concurrent_runs, args.max_body_bytes, args.port)
    key = resolve_key(args.api_key)
    check_bind(args.host, key)
    config = ServeConfig(
        load_served(args.workflows),
        api_key=key,
        max_concurrent_runs=args.max_concurrent_runs,
        max_body_bytes=args.max_body_bytes,
        resume_interrupted=args.resume_interrupted,
    )
    asyncio.run(_check_storage())
    _log_to_stderr()
    names = ", ".join(config.workflows)
    print(f"serving {names}", file=sys.stderr, flush=True)
    uv = uvicorn.Config(
        create_app(config),
        host=args.host,
        port=args.port,
        access_log=not args.quiet,
        timeout_graceful_shutdown=5,  # open event streams do not hold a shutdown forever
        log_level="info",
    )
    server = uvicorn.Server(uv)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind, having said why
        raise UsageError(f"cannot listen on {args.host}:{args.port}") from None
    return 0


async def _check_storage() -> None:
    """Open the storage once before listening: one that cannot be used (a bad state directory,
    an unreachable database) is one line and exit 2, not a traceback from the app's startup."""
    from ..storage import open_storage, orchestrator_home

    async with open_storage(orchestrator_home()):
        pass


def _log_to_stderr() -> None:
    logger = logging.getLogger("orchestrator.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
