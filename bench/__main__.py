"""Run the benchmarks and print one line each: name, figure, target, PASS/FAIL.

Exits 0 whatever the figures (benchmarks report, they do not fail the build); 2 on bad usage.
The 21-minute ``traffic collect`` run (two save intervals at the defaults) starts first, in the
background, and the others run while it does.
"""

import argparse
import sys
import time
from collections.abc import Callable

from bench import (
    cli_latency,
    collect_run,
    collector_cpu,
    ingest,
    keeper_traffic,
    mongo_ingest,
    mongo_web,
    router_poll,
    web,
)
from bench.common import Result, machine_line

NAMES = ("collector-cpu", "collector-poll", "collect-rss", "collect-writes",
         *collect_run.ROUTER_NAMES, "router-poll", "ingest", "status", "report-day",
         *web.NAMES, *keeper_traffic.NAMES, mongo_ingest.NAME,
         mongo_web.NAME)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Traffic's benchmarks (see bench/README.md).")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs for a smoke test (the collect runs last 60 s)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _print(results: list[Result]) -> None:
    for result in results:
        print(result.line(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(NAMES))
        return 0
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(NAMES)})")
    chosen = tuple(name for name in NAMES if not args.names or name in args.names)
    began = time.monotonic()
    print(machine_line(), flush=True)
    print(f"{'benchmark':<21} {'figure':>18}   {'target':<28} result"
          + ("   [--quick]" if args.quick else ""), flush=True)

    collect_names = tuple(name for name in chosen if name in collect_run.NAMES)
    background = None
    if collect_names:
        background = collect_run.CollectRun(args.quick)
        background.start()
        print(f"(traffic collect runs {background.duration:.0f} s in the background)",
              flush=True)
    router_run = None
    if "collect-rss-router" in chosen:
        router_run = collect_run.CollectRun(args.quick, router=True)
        router_run.start()
        print(f"(traffic collect with a simulated router runs {router_run.duration:.0f} s "
              "beside it)", flush=True)
    if "collector-poll" in chosen:
        _print(_safely("collector-poll", lambda: collector_cpu.run(args.quick)))
    if "router-poll" in chosen:
        _print(_safely("router-poll", lambda: router_poll.run(args.quick)))
    if "ingest" in chosen:
        _print(_safely("ingest", lambda: ingest.run(args.quick)))
    latency = tuple(name for name in chosen if name in ("status", "report-day"))
    if latency:
        _print(_safely(latency[0], lambda: cli_latency.run(args.quick, latency)))
    served = tuple(name for name in chosen if name in web.NAMES)
    if served:
        _print(_safely(served[0], lambda: web.run(args.quick, served)))
    if "keeper-traffic" in chosen:
        _print(_safely("keeper-traffic", lambda: keeper_traffic.run(args.quick)))
    if mongo_ingest.NAME in chosen:
        _print(_safely(mongo_ingest.NAME, lambda: mongo_ingest.run(args.quick)))
    if mongo_web.NAME in chosen:
        _print(_safely(mongo_web.NAME, lambda: mongo_web.run(args.quick)))
    if background is not None:
        if "collect-writes" in collect_names:
            try:
                background.steady = collect_run.steady_commit_cost()
            except Exception as error:
                background.steady = f"steady-state estimate failed: {error}"
        _print(background.results(collect_names))
    if router_run is not None:
        _print(router_run.results(collect_run.ROUTER_NAMES))
    print(f"done in {time.monotonic() - began:.0f} s", flush=True)
    return 0


def _safely(name: str, bench: Callable[[], list[Result]]) -> list[Result]:
    try:
        return bench()
    except Exception as error:
        return [Result(name, None, "", 0, error=f"{type(error).__name__}: {error}")]


if __name__ == "__main__":
    sys.exit(main())
