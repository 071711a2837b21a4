"""Command-line options of `relay bench`."""

from __future__ import annotations

import argparse


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bench flags to `parser`."""
    parser.add_argument("--events", type=int, default=5000, help="events sent one per request (default 5000)")
    parser.add_argument(
        "--batch-events", type=int, default=20000, help="events sent through /v1/events/batch (default 20000)"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="events per batch request (default 500)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent ingest requests (default 32)")
    parser.add_argument("--fanout", type=int, default=1, help="endpoints each event is delivered to (default 1)")
    parser.add_argument("--api-workers", type=int, default=1, help="relay api processes (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="relay worker processes (default 1)")
    parser.add_argument("--payload-bytes", type=int, default=256, help="approximate payload size (default 256)")
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free one)")
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="turn the ingest rate limiter off (default: on, with a limit of 1,000,000 events/s that never binds)",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="instead: time /v1/stats, endpoint stats and /metrics on a generated 1,000,000-attempt database",
    )
    parser.add_argument(
        "--scenario",
        choices=("throughput", "noisy-neighbour", "dashboard", "backlog"),
        default="throughput",
        help="throughput (default): ingest, live delivery and drain figures; noisy-neighbour: a quiet tenant's "
        "latency while another tenant's slow endpoint has a backlog; dashboard: every dashboard page's p50/p95 "
        "with 100,000 deliveries in the database; backlog: drain --backlog-events deliveries while probing the API's "
        "ingest, list and stats latency",
    )
    parser.add_argument("--backlog", type=int, default=1500, help="noisy-neighbour: the slow endpoint's backlog (1500)")
    parser.add_argument(
        "--slow-ms", type=int, default=5000, help="noisy-neighbour: the slow endpoint's answer time (5000)"
    )
    parser.add_argument(
        "--quiet-events", type=int, default=100, help="noisy-neighbour: the quiet tenant's events (100)"
    )
    parser.add_argument("--quiet-rate", type=float, default=10.0, help="noisy-neighbour: quiet events per second (10)")
    parser.add_argument(
        "--rate", type=float, default=0,
        help="also send single events at this fixed rate (events/s) and report the latency at that rate",
    )
    parser.add_argument("--rate-seconds", type=float, default=15, help="how long --rate sends (default 15)")
    parser.add_argument(
        "--soak", type=float, default=0, metavar="SECONDS",
        help="instead: sustained ingest at --soak-rate with delivery for SECONDS, a line of figures every minute",
    )
    parser.add_argument("--soak-rate", type=float, default=1000, help="events/s during --soak (default 1000)")
    parser.add_argument(
        "--soak-every", type=float, default=60, metavar="SECONDS", help="a --soak line every SECONDS (default 60)"
    )
    parser.add_argument(
        "--backlog-events", type=int, default=100_000, help="backlog scenario: events in the backlog (100000)"
    )
    parser.add_argument("--drain-timeout", type=float, default=1800, help="backlog scenario: give up after (1800 s)")
    parser.add_argument("--keep", action="store_true", help="keep the relay_bench database (default: drop it)")
    parser.add_argument("--json", action="store_true", help="print only the final JSON result line")
