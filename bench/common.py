"""What every benchmark shares: the result line, paths, a clean environment for subprocesses."""

import os
import platform
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
CACHE = BENCH_DIR / ".cache"
"""On the real disk and gitignored: stores that must live on disk, and the cached year store."""
VENV_BIN = ROOT / ".venv" / "bin"
TRAFFIC = VENV_BIN / "traffic"


@dataclass
class Result:
    """One printed line: ``name  figure unit  target  PASS/FAIL  (note)``."""

    name: str
    value: float | None
    unit: str
    target: float
    higher_is_better: bool = False
    note: str = ""
    error: str = ""

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.value is None:
            return "SKIP"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        figure = "-" if self.value is None else f"{_fmt(self.value)} {self.unit}"
        target = f"target {op} {_fmt(self.target)} {self.unit}"
        tail = self.error or self.note
        return f"{self.name:<21} {figure:>18}   {target:<28} {self.verdict:<5}" + (
            f"  ({tail})" if tail else "")


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``TRAFFIC_*`` variable, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRAFFIC_")}
    env.update(extra)
    return env


def median(values: list[float]) -> float:
    return statistics.median(values)


def fs_type(path: Path) -> str:
    """The file system type of the mount holding ``path`` (from /proc/mounts)."""
    best, kind = "", "?"
    target = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def tmpfs_dir() -> Path:
    """A directory on a RAM disk, like ``/run`` on a Raspberry Pi: where runtime files belong."""
    for candidate in (Path("/run"), Path("/dev/shm"), Path(os.environ.get("XDG_RUNTIME_DIR", "/"))):
        if candidate != Path("/") and candidate.is_dir() and fs_type(candidate) == "tmpfs":
            return candidate
    return Path("/tmp")


def machine_line() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Python {platform.python_version()} ({platform.python_implementation()}, "
            f"{sys.executable}); {platform.system()} {platform.release()} "
            f"{platform.machine()}, {cpus} CPUs{', ' + model if model else ''}")


def remove_db(path: Path) -> None:
    """Delete an SQLite file and its WAL and shared-memory companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def have_root_netns() -> str:
    """Empty when network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    return ""


Bench = Callable[[bool], list[Result]]
