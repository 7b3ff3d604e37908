"""The keeper's own traffic on an idle link, per 30 days, at the default settings.

A real link (two network namespaces and a veth pair, tests/sim/link.py), a TCP service on the far
side as the probe target, and the real ``Prober`` driven through 30 days of checks at
``keeper.check_every`` (30 s) on a fake clock: every check reads the real interface counters,
and every probe it decides to send is a real TCP connect. The figure is what the interface
counted, both directions, over the whole run. On veth every packet carries a 14-byte Ethernet
header that a PPP link does not, so the figure is an upper bound for a USB modem.
"""

import json
import subprocess
import sys

from bench.common import ROOT, Result

NAMES = ("keeper-traffic",)
TARGET_MB = 2.0
PORT = 5399
DAYS = 30

CHECKS = """
import json, sys
from traffic.config import load_config
from collector.probe import Prober

far, port, days = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
config = load_config(overrides=[f'keeper.targets=["{far}:{port}"]', "keeper.interface=wan0"],
                     environ={}, system_path=None)
prober = Prober(config.keeper)
step = int(config.keeper.check_every * 1000)
probes = ups = 0
for now in range(0, int(days * 86_400_000), step):
    evidence = prober.check(now)
    probes += evidence.probed
    ups += evidence.up
print(json.dumps({"checks": int(days * 86_400_000) // step, "probes": probes, "up": ups}))
"""


def run(quick: bool) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    from tests.sim.link import Link

    days = 3 if quick else DAYS
    link = Link.create()
    try:
        listener = link.start_listener(PORT)
        try:
            before = link.counters()
            out = subprocess.run(link.in_near(sys.executable, "-c", CHECKS, link.far_ip,
                                              str(PORT), str(days)),
                                 check=True, capture_output=True, text=True, cwd=ROOT).stdout
            after = link.counters()
        finally:
            listener.kill()
    finally:
        link.destroy()
    counted = json.loads(out)
    used = (after[0] - before[0]) + (after[1] - before[1])
    per_30_days = used * DAYS / days
    per_probe = used / max(counted["probes"], 1)
    return [Result("keeper-traffic", per_30_days / 1e6, "MB/30d", TARGET_MB, note=(
        f"{days:g} simulated days: {counted['checks']} checks, {counted['probes']} probes, "
        f"{used} B on the wire ({per_probe:.0f} B a probe, Ethernet headers included); "
        f"link up at {counted['up']} of {counted['checks']} checks"))]
