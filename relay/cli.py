"""The `relay` command: dev, api, worker, migrate, tenant, db-url, psql, jobs, queue, listen, bench."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Coroutine
from typing import Any

from relay.runtime import has_uvloop, run, tune_garbage_collector
from relay.settings import Settings, load_settings
from relay.supervise import WorkerFailed


def resolve_database(settings: Settings) -> str:
    """Return DATABASE_URL, or start (or join) the embedded PostgreSQL and return its URL."""
    if settings.database_url:
        return settings.database_url
    from relay.embedded import embedded_url

    return embedded_url(settings.home)


def _require_database_url(settings: Settings, command: str) -> str:
    if not settings.database_url:
        raise SystemExit(f"relay {command}: set DATABASE_URL (or use `relay dev`, which runs an embedded PostgreSQL)")
    return settings.database_url


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from relay.db.migrate import migrate

    conninfo = _require_database_url(settings, "migrate") if not args.embedded else resolve_database(settings)
    applied = migrate(conninfo)
    print(json.dumps({"applied": applied}))


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> None:
    import psycopg

    from relay.db.migrate import migrate
    from relay.db.tenants import create_tenant

    conninfo = resolve_database(settings)
    if not settings.database_url:
        migrate(conninfo)  # the embedded database may be brand new
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tenant_id, api_key = create_tenant(conn, args.name)
    print(json.dumps({"tenant_id": tenant_id, "api_key": api_key}))


def cmd_db_url(args: argparse.Namespace, settings: Settings) -> None:
    print(resolve_database(settings))


def cmd_psql(args: argparse.Namespace, settings: Settings) -> None:
    import shutil
    import subprocess

    from relay.embedded import psql_binary

    url = resolve_database(settings)
    if settings.database_url is None:
        binary = psql_binary()  # the embedded server's own: an older psql cannot describe a newer server
    else:
        binary = shutil.which("psql") or psql_binary()
        _warn_if_older_psql(binary, url)
    sys.exit(subprocess.call([binary, url, *args.psql_args]))


def _warn_if_older_psql(binary: str, url: str) -> None:
    """Say so when the psql found on PATH is older than the server (its \\d commands may fail)."""
    import re
    import subprocess

    import psycopg

    found = re.search(r"(\d+)(?:\.\d+)?", subprocess.run([binary, "--version"], capture_output=True, text=True).stdout)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            server = int(conn.info.server_version) // 10000
    except psycopg.Error:
        return  # psql will say what is wrong with the connection
    if found and int(found.group(1)) < server:
        print(f"relay psql: warning: {binary} is psql {found.group(1)}, older than the server "
              f"(PostgreSQL {server}); some backslash commands may fail", file=sys.stderr)


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> None:
    from relay.operate import run_jobs_cli

    conninfo = _migrated_database(settings)
    sys.exit(run_jobs_cli(conninfo, args.procrastinate_args))


def cmd_queue(args: argparse.Namespace, settings: Settings) -> None:
    import psycopg

    from relay.operate import print_queue

    try:
        print_queue(_migrated_database(settings), as_json=args.json, tenant_id=args.tenant, endpoint_id=args.endpoint)
    except psycopg.errors.UndefinedTable:
        raise SystemExit("relay queue: this database has no Relay schema yet; run `relay migrate`") from None
    except psycopg.OperationalError as exc:
        raise SystemExit(f"relay queue: cannot reach the database: {exc}") from None


def _migrated_database(settings: Settings) -> str:
    """Relay's database: DATABASE_URL, or the embedded one (started if needed, its schema brought up to date)."""
    conninfo = resolve_database(settings)
    if not settings.database_url:
        from relay.db.migrate import migrate

        migrate(conninfo)  # the embedded database may be brand new; an external one is migrated by its operator
    return conninfo


def cmd_listen(args: argparse.Namespace, settings: Settings) -> None:
    from relay.listen import listen

    listen(args.host, args.port, args.secret, args.status, all_headers=args.headers)


def cmd_api(args: argparse.Namespace, settings: Settings) -> None:
    import structlog
    import uvicorn

    from relay.log import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    _require_database_url(settings, "api")
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes answer /metrics in turn: they must count HTTP requests in one shared place.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="relay-metrics-")
    structlog.get_logger("relay.api").info("api.starting", host=args.host, port=args.port, workers=args.workers)
    uvicorn.run(
        "relay.api.asgi:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        loop="uvloop" if has_uvloop() else "asyncio",
        http="httptools",
        lifespan="on",
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from relay.log import configure_logging
    from relay.worker.run import install_stop_signals, run_worker

    configure_logging(settings.log_format, settings.log_level)
    conninfo = _require_database_url(settings, "worker")

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await run_worker(settings, conninfo, stop, concurrency=args.concurrency)

    tune_garbage_collector()
    try:
        _run(main())
    except WorkerFailed:
        sys.exit(1)  # already logged with its traceback; the process manager starts a fresh worker


def cmd_dev(args: argparse.Namespace, settings: Settings) -> None:
    import structlog
    import uvicorn

    from relay.api.app import create_app
    from relay.db.migrate import migrate
    from relay.log import configure_logging
    from relay.urlguard import DEV_NETWORKS, parse_networks
    from relay.worker.run import install_stop_signals, run_worker

    configure_logging("console" if settings.log_format == "auto" else settings.log_format, settings.log_level)
    log = structlog.get_logger("relay.dev")
    if settings.allowed_networks is None:
        # Development delivers to receivers on this machine and the local network; production does not.
        settings = dataclasses.replace(settings, allowed_networks=parse_networks(",".join(DEV_NETWORKS)))
        log.warning(
            "relay.dev.ssrf_relaxed",
            allowed_networks=DEV_NETWORKS,
            note="relay dev delivers to loopback and private networks; "
            "relay api/worker refuse them unless RELAY_ALLOWED_NETWORKS allows",
        )
    conninfo = resolve_database(settings)
    migrate(conninfo)
    where = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL under {settings.home}"
    log.info(
        "relay.dev.started",
        api=f"http://{args.host}:{args.port}",
        database=where,
        docs=f"http://{args.host}:{args.port}/schema",
    )

    async def main() -> None:
        stop = asyncio.Event()
        config = uvicorn.Config(
            create_app(settings, conninfo), host=args.host, port=args.port, log_level="warning", lifespan="on",
            proxy_headers=settings.trusted_proxies is not None, forwarded_allow_ips=settings.trusted_proxies,
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        install_stop_signals(stop)
        api = asyncio.create_task(server.serve())
        worker = asyncio.create_task(run_worker(settings, conninfo, stop, concurrency=args.concurrency))
        await stop.wait()
        server.should_exit = True
        _, worker_result = await asyncio.gather(api, worker, return_exceptions=True)
        log.info("relay.dev.stopped")
        if isinstance(worker_result, WorkerFailed):
            raise worker_result

    tune_garbage_collector()
    try:
        _run(main())
    except WorkerFailed:
        sys.exit(1)  # already logged with its traceback


def cmd_bench(args: argparse.Namespace, settings: Settings) -> None:
    from relay.bench.run import run_bench

    sys.exit(run_bench(args, settings))


def _run(coro: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        run(coro)


def default_api_workers() -> int:
    """API processes by default: half the cores (the worker and PostgreSQL need the rest), 1 to 8.

    Measured on 2 cores (`relay bench --api-workers 1` vs `2`): 1,304 vs 1,292 single events/s —
    a second process only adds contention there; the API takes about a third of the CPU per event.
    """
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser (the command names and flags are a contract)."""
    parser = argparse.ArgumentParser(prog="relay", description="Webhook delivery on PostgreSQL alone.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev", help="run API and worker together (embedded PostgreSQL unless DATABASE_URL is set)"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument(
        "--concurrency", type=int, default=None, help="in-flight deliveries (default RELAY_DISPATCH_CONCURRENCY)"
    )
    dev.set_defaults(func=cmd_dev)

    api = commands.add_parser("api", help="run the HTTP API (needs DATABASE_URL)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=8000)
    api.add_argument(
        "--workers", type=int, default=default_api_workers(),
        help=f"API processes (default {default_api_workers()}: half this machine's cores, 1 to 8)",
    )
    api.set_defaults(func=cmd_api)

    worker = commands.add_parser("worker", help="run the delivery worker (needs DATABASE_URL)")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="in-flight deliveries (default RELAY_DISPATCH_CONCURRENCY)"
    )
    worker.set_defaults(func=cmd_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations (needs DATABASE_URL)")
    migrate.add_argument("--embedded", action="store_true", help="migrate the embedded database of `relay dev`")
    migrate.set_defaults(func=cmd_migrate)

    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_commands = tenant.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    create = tenant_commands.add_parser("create", help="create a tenant and its first API key; prints JSON")
    create.add_argument("name")
    create.set_defaults(func=cmd_tenant_create)

    db_url = commands.add_parser("db-url", help="print the database URL (starts the embedded PostgreSQL if needed)")
    db_url.set_defaults(func=cmd_db_url)

    psql = commands.add_parser(
        "psql", help="open psql on Relay's database (the embedded one unless DATABASE_URL is set)"
    )
    psql.add_argument("psql_args", nargs="*", metavar="PSQL_ARG", help="passed to psql as they are, e.g. -c 'select 1'")
    psql.set_defaults(func=cmd_psql)

    jobs = commands.add_parser(
        "jobs",
        help="procrastinate's CLI on Relay's jobs and database, e.g. `relay jobs shell list_jobs`",
        description="Everything after `jobs` goes to procrastinate's CLI with --app=relay.jobs.app, on Relay's "
        "database (DATABASE_URL, or the embedded one). E.g. `relay jobs healthchecks`, "
        "`relay jobs shell list_jobs status=failed`, `relay jobs shell` (interactive).",
    )
    jobs.add_argument("procrastinate_args", nargs="*", metavar="ARG", help="procrastinate's command and its arguments")
    jobs.set_defaults(func=cmd_jobs)

    queue = commands.add_parser(
        "queue", help="the delivery queue: due, in flight, retrying, held (by reason), oldest due, per endpoint"
    )
    queue.add_argument("--json", action="store_true", help="print JSON instead of a table")
    queue.add_argument("--tenant", default=None, help="only this tenant's endpoints")
    queue.add_argument("--endpoint", default=None, help="only this endpoint")
    queue.set_defaults(func=cmd_queue)

    listen = commands.add_parser("listen", help="run a local receiver that prints deliveries and checks signatures")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=9000)
    listen.add_argument("--secret", default=None, help="the endpoint's whsec_ secret, to verify signatures")
    listen.add_argument("--status", type=int, default=200, help="status to answer with (default 200)")
    listen.add_argument("--headers", action="store_true", help="print every request header, not only the webhook ones")
    listen.set_defaults(func=cmd_listen)

    from relay.bench.options import add_bench_arguments

    bench = commands.add_parser("bench", help="measure ingest and delivery throughput end to end")
    add_bench_arguments(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the `relay` command line."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["psql"] and argv[1:2] not in (["-h"], ["--help"]):
        # Everything after `psql` is psql's own (-c, -At, ...), so argparse must not see it.
        args = argparse.Namespace(psql_args=argv[1:])
        cmd_psql(args, load_settings())
        return
    if argv[:1] == ["jobs"] and argv[1:2] not in (["-h"], ["--help"]):
        cmd_jobs(argparse.Namespace(procrastinate_args=argv[1:]), load_settings())  # procrastinate parses the rest
        return
    args = build_parser().parse_args(argv)
    args.func(args, load_settings())


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
