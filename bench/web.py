"""The web stack over a year of data: API latency, throughput, page weight, realtime updates.

One stack serves them all: gunicorn with ``util/gunicorn.conf.py`` behind nginx with
``util/nginx/traffic.conf`` (``tests.stack.WebStack``), both on free loopback ports, with a config
pointing at a private copy of the cached year store (see ``bench/cli_latency.py``) in the time zone
the store was built in, ``[quota] monthly = "40 GB"``, ``[web] allow = ["127.0.0.0/8"]``, and a
runtime directory on a RAM disk. Until the realtime benchmark starts a collector, that directory
holds a realtime file as a collector at the default interval leaves it (120 points, 5 s apart),
since ``/api/v1/usage`` and ``/`` read it on every request. This process keeps a connection to
the store open throughout, as the always-running collector does in production (see
``Site.hold``).

- ``api-usage``, ``api-series-day``: p95 of 300 sequential GETs (``--quick``: 100) after 20
  warm-up ones, through nginx, over one keep-alive ``http.client`` connection sending
  ``Accept-Encoding: gzip`` as a browser does. The note adds p50, max, the same straight to
  gunicorn (whose sync workers close every connection), the same through nginx with no other
  connection to the store open (no collector running), and the response's size.
- ``wrk-usage``: requests/s of ``wrk -t2 -c16 -d10s`` (``--quick``: 3 s) on ``/api/v1/usage``
  through nginx, with ``Accept-Encoding: gzip``; wrk shares the 2 cores with nginx and gunicorn.
- ``page-cold-bytes``: encoded bytes (headers and body, as ``Network.loadingFinished`` reports
  them) of every response of a cold load of ``/`` in headless Chromium (a new browser context,
  so an empty cache), until the three charts have data and the network is idle.
- ``realtime-update-bytes``: with ``traffic collect`` polling ``lo`` every second (same config
  file), ``/rt`` open for 10 s (``--quick``: 5 s); the mean encoded bytes of the
  ``/api/v1/realtime?since=...`` responses, i.e. every one after the first.
"""

import contextlib
import gzip
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import CACHE, TRAFFIC, Result, clean_env, tmpfs_dir

NAMES = ("api-usage", "api-series-day", "wrk-usage", "page-cold-bytes", "realtime-update-bytes")
API_TARGET_MS = 25.0
WRK_TARGET = 1500.0
PAGE_TARGET_KB = 175.0
UPDATE_TARGET_KB = 1.0
PATHS = {"api-usage": "/api/v1/usage", "api-series-day": "/api/v1/series?resolution=day"}
WARMUP = 20
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHARTS_READY = """() => window.Highcharts && Highcharts.charts.filter(Boolean).length === 3 &&
    Highcharts.charts.filter(Boolean).every(c => c.series[0].options.data.length > 0)"""
RT_POINTS = """() => window.Highcharts && Highcharts.charts.filter(Boolean).length > 0 ?
    Highcharts.charts.filter(Boolean)[0].series[0].options.data.length : 0"""
UNITS = {"api-usage": "ms", "api-series-day": "ms", "wrk-usage": "req/s",
         "page-cold-bytes": "KB", "realtime-update-bytes": "KB"}
TARGETS = {"api-usage": API_TARGET_MS, "api-series-day": API_TARGET_MS,
           "wrk-usage": WRK_TARGET, "page-cold-bytes": PAGE_TARGET_KB,
           "realtime-update-bytes": UPDATE_TARGET_KB}
REALTIME_POINTS = 120
REALTIME_STEP_MS = 5000


@dataclass
class Site:
    """The running stack and what it serves."""

    stack: Any
    config: Path
    work: Path
    run_dir: Path
    store: Path
    holder: Any = None

    def hold(self) -> None:
        """Keep a connection to the store open, as the running collector does in production.

        While another connection is open, the web app's per-request open and close are cheap;
        when a request's connection is the last one, closing it checkpoints and deletes the WAL,
        and the next request's open makes it again.
        """
        from traffic.config import load_config
        from traffic.store import open_site_store

        if self.holder is None:
            config = load_config(self.config, [], environ=clean_env())
            self.holder = open_site_store(config, create=True)

    def release(self) -> None:
        if self.holder is not None:
            self.holder.close()
            self.holder = None

    @property
    def realtime_file(self) -> Path:
        from traffic.config import load_config
        from traffic.runtime import realtime_path

        return realtime_path(load_config(self.config, [], environ=clean_env()))


def _write_config(path: Path, store: Path, run_dir: Path, timezone: str) -> None:
    path.write_text(
        f'timezone = "{timezone}"\n'
        f'[store]\nurl = "sqlite://{store}"\n'
        f'[collector]\ninterval = "1s"\nruntime_dir = "{run_dir}"\n'
        '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n'
        '[quota]\nmonthly = "40 GB"\n'
        '[web]\nallow = ["127.0.0.0/8"]\n')


def realtime_document(site: str, now: int) -> dict[str, Any]:
    """A realtime document as a collector at the default 5 s interval publishes it at ``now``:
    120 points."""
    points = [[now - (REALTIME_POINTS - 1 - i) * REALTIME_STEP_MS,
               round(12_345.6 + 97.3 * i, 1), round(1_234.5 + 9.1 * i, 1)]
              for i in range(REALTIME_POINTS)]
    return {"site": site, "interval_s": REALTIME_STEP_MS / 1000, "updated": now,
            "read_at": now, "points": points}


def _seed_realtime(site: Site) -> None:
    from traffic.runtime import write_atomically

    write_atomically(site.realtime_file, realtime_document("home", time.time_ns() // 1_000_000))


@contextlib.contextmanager
def _site() -> Iterator[Site]:
    from bench.cli_latency import cli_config, copy_of_year_store
    from tests.stack import WebStack

    work = CACHE / f"web-{os.getpid()}"
    run_dir = Path(tempfile.mkdtemp(prefix="traffic-bench-web-", dir=tmpfs_dir()))
    stack = None
    site = None
    try:
        work.mkdir(parents=True, exist_ok=True)
        store = copy_of_year_store(work / "traffic.db")
        config = work / "traffic.toml"
        _write_config(config, store, run_dir / "run", cli_config().timezone.key)
        stack = WebStack(config, run_dir)
        site = Site(stack, config, work, run_dir, store)
        _seed_realtime(site)
        site.hold()
        stack.start()
        yield site
    finally:
        if stack is not None:
            stack.stop()
        if site is not None:
            site.release()
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed_get(conn: http.client.HTTPConnection, path: str) -> tuple[float, int, bytes, str]:
    began = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "gzip", "Accept": "application/json"})
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - began) * 1000
    return elapsed, response.status, body, response.getheader("Content-Encoding") or ""


def _latencies(base_url: str, path: str, runs: int) -> tuple[list[float], int, int]:
    """Times of ``runs`` GETs after the warm-up; the body's size decoded and as sent."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        times = []
        size = sent = 0
        for i in range(WARMUP + runs):
            elapsed, status, body, encoding = timed_get(conn, path)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status}: {body[:200]!r}")
            if i == 0:
                decoded = gzip.decompress(body) if encoding == "gzip" else body
                json.loads(decoded)
                size, sent = len(decoded), len(body)
            if i >= WARMUP:
                times.append(elapsed)
        return times, size, sent
    finally:
        conn.close()


def _api(site: Site, name: str, quick: bool) -> Result:
    runs = 100 if quick else 300
    path = PATHS[name]
    times, size, sent = _latencies(site.stack.url, path, runs)
    direct, _, _ = _latencies(site.stack.app_url, path, runs)
    site.release()
    try:
        alone, _, _ = _latencies(site.stack.url, path, runs)
    finally:
        site.hold()
    p95 = percentile(times, 0.95)
    note = (f"GET {path} through nginx, {runs} sequential after {WARMUP}: "
            f"p50 {percentile(times, 0.5):.2f} ms, p95 {p95:.2f} ms, max {max(times):.1f} ms; "
            f"straight to gunicorn p50 {percentile(direct, 0.5):.2f} ms, "
            f"p95 {percentile(direct, 0.95):.2f} ms; with no other connection to the store "
            f"open (no collector) p50 {percentile(alone, 0.5):.2f} ms, "
            f"p95 {percentile(alone, 0.95):.2f} ms; body {size:,} B, {sent:,} B sent")
    return Result(name, p95, "ms", API_TARGET_MS, note=note)


def _wrk(site: Site, quick: bool) -> Result:
    wrk = shutil.which("wrk") or ("/usr/bin/wrk" if os.path.exists("/usr/bin/wrk") else None)
    if wrk is None:
        return Result("wrk-usage", None, "req/s", WRK_TARGET, higher_is_better=True,
                      note="needs wrk (make bench installs it)")
    seconds = 3 if quick else 10
    url = site.stack.url + PATHS["api-usage"]
    _latencies(site.stack.url, PATHS["api-usage"], 0)  # warm both workers' caches
    command = [wrk, "-t2", "-c16", f"-d{seconds}s", "--latency", "-H", "Accept-Encoding: gzip",
               url]
    servers = {"gunicorn": _family(site.stack.processes[0].pid),
               "nginx": _family(site.stack.processes[1].pid)}
    before = {name: _cpu_s(pids) for name, pids in servers.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: _cpu_s(pids) - before[name] for name, pids in servers.items()}
    cpu["wrk"] = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    out = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk exit {done.returncode}: {(done.stderr or out)[-200:]}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk output: {out[-300:]!r}")
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.MULTILINE))
    problems = []
    if non_ok := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        problems.append(f"{non_ok.group(1)} non-2xx responses")
    if errors := re.search(r"Socket errors: (.*)", out):
        problems.append(f"socket errors: {errors.group(1)}")
    requests = int(total.group(1)) if total else 0
    share = ", ".join(f"{name} {used / seconds * 100:.0f}%"
                      + (f" ({used * 1000 / requests:.2f} ms/req)" if requests else "")
                      for name, used in cpu.items())
    note = (f"wrk -t2 -c16 -d{seconds}s, gzip, through nginx: "
            f"{requests or '?'} requests in {total.group(2) if total else '?'}, "
            f"latency p50 {latency.get('50', '?')}, p90 {latency.get('90', '?')}, "
            f"p99 {latency.get('99', '?')}; CPU of 2 cores: {share}")
    result = Result("wrk-usage", float(rate.group(1)), "req/s", WRK_TARGET,
                    higher_is_better=True, note="; ".join([note, *problems]))
    if problems:
        result.error = "; ".join(problems) + "; " + note
    return result


def _family(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's or nginx's master and workers)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                pids.append(int(stat.parent.name))
    return pids


def _cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds used so far by ``pids`` (those still running)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class _Traffic:
    """Encoded bytes per response of one page, from Chromium's own network events (CDP)."""

    def __init__(self, context: Any, page: Any) -> None:
        self.urls: dict[str, str] = {}
        self.order: list[str] = []
        self.status: dict[str, int] = {}
        self.encoding: dict[str, str] = {}
        self.finished: dict[str, int] = {}
        self.headers: dict[str, int] = {}
        self.failed: dict[str, str] = {}
        self.session = context.new_cdp_session(page)
        self.session.on("Network.requestWillBeSent", self._sent)
        self.session.on("Network.responseReceived", self._received)
        self.session.on("Network.loadingFinished", self._finished)
        self.session.on("Network.loadingFailed", self._failed)
        self.session.send("Network.enable")
        self.session.send("Network.setCacheDisabled", {"cacheDisabled": False})

    def _sent(self, event: dict[str, Any]) -> None:
        request_id = event["requestId"]
        if request_id not in self.urls:
            self.order.append(request_id)
        self.urls[request_id] = event["request"]["url"]

    def _received(self, event: dict[str, Any]) -> None:
        response = event["response"]
        self.status[event["requestId"]] = response.get("status", 0)
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        self.encoding[event["requestId"]] = headers.get("content-encoding", "")
        self.headers[event["requestId"]] = int(response.get("encodedDataLength") or 0)

    def _finished(self, event: dict[str, Any]) -> None:
        self.finished[event["requestId"]] = int(event["encodedDataLength"])

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed[event["requestId"]] = event.get("errorText", "?")

    def responses(self) -> list[tuple[str, int, int, str]]:
        """(url, status, encoded bytes, content-encoding) of each finished request, in order."""
        return [(self.urls[rid], self.status.get(rid, 0), self.finished[rid],
                 self.encoding.get(rid, "")) for rid in self.order if rid in self.finished]

    def body(self, url: str) -> str:
        for rid in self.order:
            if self.urls[rid] == url and rid in self.finished:
                return self.session.send("Network.getResponseBody", {"requestId": rid})["body"]
        return ""


@contextlib.contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _short(url: str) -> str:
    """A response's name for the note: the file of an asset, the path and query of the rest."""
    parts = urlsplit(url)
    if parts.path.startswith(("/js/", "/static/")):
        return parts.path.rsplit("/", 1)[-1]
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _page(site: Site, browser: Any) -> Result:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        traffic = _Traffic(context, page)
        page.goto(site.stack.url + "/")
        page.wait_for_function(CHARTS_READY, timeout=30_000)
        page.wait_for_load_state("networkidle", timeout=30_000)
        responses = traffic.responses()
    finally:
        context.close()
    if errors:
        raise RuntimeError(f"page error: {errors[0][:200]}")
    bad = [(url, status) for url, status, _, _ in responses if status >= 400]
    total = sum(size for _, _, size, _ in responses)
    biggest = sorted(responses, key=lambda r: r[2], reverse=True)[:3]
    parts = ", ".join(f"{_short(url)} {size / 1000:.1f}{' gzip' if enc == 'gzip' else ''}"
                      for url, _, size, enc in biggest)
    note = (f"{len(responses)} responses, KB = 10**3 B incl. headers; biggest: {parts}"
            + (f"; failed: {list(traffic.failed.values())}" if traffic.failed else "")
            + (f"; HTTP errors: {bad}" if bad else ""))
    return Result("page-cold-bytes", total / 1000, "KB", PAGE_TARGET_KB, note=note)


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def _realtime(site: Site, browser: Any, quick: bool) -> Result:
    seconds = 5 if quick else 10
    realtime_file = site.realtime_file
    realtime_file.unlink(missing_ok=True)
    log_path = site.run_dir / "collector.log"
    with log_path.open("wb") as log:
        collector = subprocess.Popen([str(TRAFFIC), "--config", str(site.config), "collect"],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env=clean_env(), cwd=site.run_dir)
    context = None
    try:
        def started() -> bool:
            if collector.poll() is not None:
                raise RuntimeError("collector exited: "
                                   + log_path.read_text(errors="replace")[-300:])
            return realtime_file.exists()

        _wait_for(started, 30, "the collector wrote no realtime file in 30 s")
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        traffic = _Traffic(context, page)
        page.goto(site.stack.url + "/rt")
        time.sleep(seconds)
        chart_points = page.evaluate(RT_POINTS)
        responses = [r for r in traffic.responses() if "/api/v1/realtime" in r[0]]
        updates = [r for r in responses if "since=" in r[0]]
        points = []
        for url, _, _, _ in updates:
            with contextlib.suppress(Exception):
                points.append(len(json.loads(traffic.body(url)).get("points", [])))
        header_bytes = [traffic.headers.get(rid, 0) for rid in traffic.order
                        if rid in traffic.finished and "since=" in traffic.urls[rid]]
    finally:
        if context is not None:
            context.close()
        if collector.poll() is None:
            collector.send_signal(signal.SIGTERM)
            try:
                collector.wait(timeout=30)
            except subprocess.TimeoutExpired:
                collector.kill()
                collector.wait()
    if not updates:
        raise RuntimeError(f"no /api/v1/realtime?since= response in {seconds} s "
                           f"({len(responses)} realtime responses)")
    sizes = [size for _, _, size, _ in updates]
    bad = [status for _, status, _, _ in updates if status != 200]
    mean = sum(sizes) / len(sizes)
    first = responses[0][2] if responses and "since=" not in responses[0][0] else 0
    head = sum(header_bytes) / len(header_bytes) if header_bytes else 0
    note = (f"{len(updates)} updates in {seconds} s at a 1 s poll, {min(sizes)}-{max(sizes)} B "
            f"each, of which headers {head:.0f} B; {sum(points)} points in them, "
            f"{chart_points} on the chart; "
            f"first response {first} B; KB = 10**3 B"
            + (f"; non-200: {bad}" if bad else ""))
    return Result("realtime-update-bytes", mean / 1000, "KB", UPDATE_TARGET_KB, note=note)


def run(quick: bool, names: tuple[str, ...] = NAMES) -> list[Result]:
    def failed(name: str, error: BaseException | str) -> Result:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return Result(name, None, UNITS[name], TARGETS[name],
                      higher_is_better=name == "wrk-usage", error=text)

    results: list[Result] = []
    try:
        with _site() as site:
            for name in ("api-usage", "api-series-day"):
                if name in names:
                    try:
                        results.append(_api(site, name, quick))
                    except Exception as error:
                        results.append(failed(name, error))
            if "wrk-usage" in names:
                try:
                    results.append(_wrk(site, quick))
                except Exception as error:
                    results.append(failed("wrk-usage", error))
            browser_names = [n for n in ("page-cold-bytes", "realtime-update-bytes")
                             if n in names]
            if browser_names:
                results.extend(_in_browser(site, quick, browser_names, failed))
    except Exception as error:
        done = {result.name for result in results}
        results.extend(failed(name, f"web stack: {type(error).__name__}: {error}")
                       for name in names if name not in done)
    return results


def _in_browser(site: Site, quick: bool, names: list[str], failed: Any) -> list[Result]:
    skip = ""
    if not os.path.exists(CHROMIUM):
        skip = f"needs {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip = "needs playwright (make test-deps)"
    if skip:
        return [Result(name, None, "KB", TARGETS[name], note=skip) for name in names]
    results = []
    try:
        with _browser() as browser:
            for name in names:
                try:
                    results.append(_page(site, browser) if name == "page-cold-bytes"
                                   else _realtime(site, browser, quick))
                except Exception as error:
                    results.append(failed(name, error))
    except Exception as error:
        done = {result.name for result in results}
        results.extend(failed(name, f"chromium: {type(error).__name__}: {error}")
                       for name in names if name not in done)
    return results
