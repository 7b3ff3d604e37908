"""The systemd units in util/systemd/ as ``make install-systemd`` installs them, checked without
a running systemd (this machine's PID 1 is not systemd): their settings, ``systemd-analyze
verify`` and ``security --offline`` on the installed copies, and the collector run with the
unit's user rights (own uid, two ambient capabilities, no new privileges, read-only system).
"""

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import ROOT, VENV_BIN, clean_env

TRAFFIC = VENV_BIN / "traffic"
UNITS = ROOT / "util" / "systemd"
COLLECTOR = "traffic-collector.service"
WEB = "traffic-web.service"
UNPRIVILEGED_UID = 64011
"""A uid no file here belongs to, standing in for the ``traffic`` user."""


def parse_unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value assigned, in order (systemd allows repeats)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    return settings[key][-1]


def environment(settings: dict[str, list[str]]) -> dict[str, str]:
    pairs = " ".join(settings.get("Service.Environment", [])).split()
    return dict(pair.split("=", 1) for pair in pairs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    destdir = tmp_path_factory.mktemp("destdir")
    subprocess.run(["make", "-s", "install-systemd", f"DESTDIR={destdir}"], cwd=ROOT,
                   check=True, capture_output=True, text=True)
    return destdir


def test_both_units_run_as_traffic_restart_on_failure_and_share_the_runtime_dir() -> None:
    for name, command in ((COLLECTOR, "collect"), (WEB, "web")):
        unit = parse_unit(UNITS / name)
        assert one(unit, "Service.User") == one(unit, "Service.Group") == "traffic", name
        assert one(unit, "Service.ExecStart") == f"/opt/traffic/.venv/bin/traffic {command}"
        assert one(unit, "Service.WorkingDirectory") == "/opt/traffic"
        assert one(unit, "Service.Restart") == "on-failure"
        assert one(unit, "Service.StateDirectory") == "traffic"
        assert one(unit, "Service.StateDirectoryMode") == "0750"
        assert one(unit, "Service.ProtectSystem") == "strict"
        assert one(unit, "Service.NoNewPrivileges") == "yes"
        assert environment(unit) == {"TRAFFIC_COLLECTOR_RUNTIME_DIR": "/run/traffic"}
        assert one(unit, "Install.WantedBy") == "multi-user.target"
    collector = parse_unit(UNITS / COLLECTOR)
    assert one(collector, "Service.RuntimeDirectory") == "traffic"
    assert one(collector, "Service.RuntimeDirectoryPreserve") == "restart"
    assert one(collector, "Service.KillMode") == "mixed"
    assert one(collector, "Service.TimeoutStopSec") == "60"  # as stopwaitsecs in programs.conf
    assert set(one(collector, "Service.AmbientCapabilities").split()) == {
        "CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert "AF_NETLINK" in one(collector, "Service.RestrictAddressFamilies").split()
    web = parse_unit(UNITS / WEB)
    assert "Service.RuntimeDirectory" not in web  # stopping the web app must not remove it
    assert one(web, "Service.CapabilityBoundingSet") == ""
    assert "AF_NETLINK" not in one(web, "Service.RestrictAddressFamilies").split()


def test_the_units_environment_sets_collector_runtime_dir() -> None:
    """The variable's name is the setting's: check-config reports what the unit sets."""
    env = clean_env() | environment(parse_unit(UNITS / COLLECTOR))
    shown = subprocess.run([TRAFFIC, "check-config"], env=env,
                           check=True, capture_output=True, text=True).stdout
    assert 'runtime_dir = "/run/traffic"' in shown


def test_install_fills_in_the_checkout_and_creates_the_user(installed: Path) -> None:
    passwd = (installed / "etc" / "passwd").read_text()
    assert re.search(r"^traffic:x:\d+:\d+:[^:]*:/var/lib/traffic:/usr/sbin/nologin$", passwd,
                     re.MULTILINE)
    for name in (COLLECTOR, WEB):
        text = (installed / "etc" / "systemd" / "system" / name).read_text()
        assert "/opt/traffic" not in text
        executable = Path(one(parse_unit(installed / "etc/systemd/system" / name),
                              "Service.ExecStart").split()[0])
        assert executable == TRAFFIC
        assert os.access(executable, os.X_OK)


def verify(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"./{COLLECTOR}", f"./{WEB}"],
                          cwd=directory, capture_output=True, text=True)


def exposure(destdir: Path, unit: str) -> tuple[float, str]:
    report = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={destdir}",
                             unit], capture_output=True, text=True).stdout
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", report)
    assert level, report
    return float(level[1]), report


def test_installed_units_pass_systemd_analyze_verify(installed: Path) -> None:
    """verify also fails when an ExecStart program does not exist."""
    result = verify(installed / "etc" / "systemd" / "system")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_exposure_as_systemd_rates_it(installed: Path) -> None:
    collector, report = exposure(installed, COLLECTOR)
    assert collector <= 2.0, report
    assert "✓ User=/DynamicUser=" in report
    web, report = exposure(installed, WEB)
    assert web <= 1.5, report
    assert "✓ CapabilityBoundingSet=~CAP_SYS_ADMIN" in report


def test_as_root_drop_ins_are_installed_verified_and_removed_again(tmp_path: Path) -> None:
    make = ["make", "-s", "install-systemd", f"DESTDIR={tmp_path}"]
    subprocess.run([*make, "AS_ROOT=yes"], cwd=ROOT, check=True, capture_output=True)
    units = tmp_path / "etc" / "systemd" / "system"
    result = verify(units)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    _, report = exposure(tmp_path, COLLECTOR)
    assert "✗ User=/DynamicUser=" in report and "✗ CapabilityBoundingSet=~CAP_SYS_ADMIN" in report
    _, report = exposure(tmp_path, WEB)  # root, but still no capability
    assert "✗ User=/DynamicUser=" in report and "✓ CapabilityBoundingSet=~CAP_SYS_ADMIN" in report

    output = subprocess.run(make, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert f"removed {units}/{COLLECTOR}.d/as-root.conf" in output
    assert not list(units.glob("*.d/*.conf"))


def hardened(command: list[str], writable: list[Path], setup: str = "",
             namespaces: tuple[str, ...] = ("--mount",)) -> list[str]:
    """``command`` as the collector's unit runs it, as far as it can be without systemd: in a
    mount namespace with every mount read-only but ``writable`` (ProtectSystem=strict), as an
    unprivileged uid with CAP_NET_ADMIN and CAP_NET_RAW only, no new privileges. ``setup``
    runs as root before."""
    caps = "-all,+net_admin,+net_raw"
    script = (
        f"set -e; {setup}mount --make-rprivate /; "
        "for dir in \"$@\"; do mount --bind \"$dir\" \"$dir\"; done; "
        "awk '{print $2}' /proc/self/mounts | grep -Ev '^/(proc|sys|dev)(/|$)' | "
        "while read -r point; do mount -o remount,bind,ro \"$point\" 2>/dev/null || true; done; "
        "for dir in \"$@\"; do mount -o remount,bind,rw \"$dir\"; done; "
        f"exec setpriv --reuid={UNPRIVILEGED_UID} --regid={UNPRIVILEGED_UID} --clear-groups "
        f"--inh-caps={caps} --ambient-caps={caps} --bounding-set={caps} --no-new-privs "
        + " ".join(command))
    return ["unshare", *namespaces, "sh", "-c", script, "sh", *map(str, writable)]


@pytest.fixture
def reachable_path() -> Iterator[Path]:
    """A temporary folder the unprivileged uid can reach (pytest's are root's, mode 700)."""
    path = Path(tempfile.mkdtemp(prefix="traffic-systemd-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_collector_counts_with_the_units_rights_on_a_read_only_system(reachable_path: Path
                                                                      ) -> None:
    tmp_path = reachable_path
    state, run = tmp_path / "state", tmp_path / "run"
    for directory in (state, run):
        directory.mkdir()
        os.chown(directory, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    config = tmp_path / "traffic.toml"
    config.write_text(f'[store]\nurl = "sqlite://{state}/traffic.db"\n'
                      '[[sources]]\ntype = "kernel"\ninterfaces = ["lo"]\n')
    open_to_all = tmp_path / "open"
    open_to_all.mkdir(mode=0o777)
    open_to_all.chmod(0o777)
    probe = subprocess.run(hardened(["touch", str(open_to_all / "file")], [state, run]),
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr

    env = clean_env() | environment(parse_unit(UNITS / COLLECTOR))
    command = [str(TRAFFIC), "collect", "--config", str(config),
               "--set", f"collector.runtime_dir={run}", "--once"]
    result = subprocess.run(hardened(command, [state, run]), env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    assert (state / "traffic.db").stat().st_uid == UNPRIVILEGED_UID
    with sqlite3.connect(state / "traffic.db") as db:
        keys = [row[0] for row in db.execute("SELECT key FROM tracker")]
    assert keys == ["kernel:lo"]
    assert (run / "home.save").stat().st_uid == UNPRIVILEGED_UID


def test_keeper_commands_get_the_capabilities_to_set_links_up_and_down() -> None:
    """In a network namespace of its own: ``ip link set`` as the keeper would run it."""
    command = ["sh", "-c", "'grep CapAmb /proc/self/status; ip link set traffic0 up; "
               "ip -o link show traffic0'"]
    result = subprocess.run(
        hardened(command, [], setup="ip link add traffic0 type veth peer name traffic1; ",
                 namespaces=("--mount", "--net")), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "CapAmb:\t0000000000003000" in result.stdout  # CAP_NET_ADMIN and CAP_NET_RAW
    assert re.search(r"traffic0@traffic1: <[^>]*\bUP\b", result.stdout), result.stdout
