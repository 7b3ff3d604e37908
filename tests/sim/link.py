"""A simulated mobile link: two network namespaces joined by a veth pair, carrying real bytes.

"PPP reconnect" is deleting the veth and creating it anew (new ifindex, counters from zero);
"link down" is ``ip link set down``. IPv6 is off in both namespaces so that nothing but the
test's own traffic crosses the link and byte counts are exact.

Run as a module it is the traffic generator: ``sink HOST PORT`` receives and prints the byte
count, ``send HOST PORT BYTES RATE`` sends that many bytes at about RATE bytes/s (0: as fast as
possible).
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

PORT = 5001
_names = itertools.count()


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@dataclass
class Link:
    """Namespace ``near`` (where the collector runs, interface ``near_if``) and ``far``."""

    near: str
    far: str
    near_if: str = "wan0"
    far_if: str = "peer0"
    near_ip: str = "10.231.0.1"
    far_ip: str = "10.231.0.2"
    owns_near: bool = True
    """False for a link ``beside`` another: the near namespace is the other's."""

    @classmethod
    def create(cls) -> "Link":
        suffix = f"{os.getpid()}-{next(_names)}"
        link = cls(near=f"tr-near-{suffix}", far=f"tr-far-{suffix}")
        for namespace in (link.near, link.far):
            _add_namespace(namespace)
        link.plug()
        return link

    def beside(self, number: int = 1) -> "Link":
        """A second link from the same near namespace (a box with two uplinks, or two boxes'
        collectors side by side) to a far namespace of its own: ``wan1`` to ``10.231.1.2``."""
        link = Link(near=self.near, far=f"tr-far-{os.getpid()}-{next(_names)}",
                    near_if=f"wan{number}", far_if=f"peer{number}",
                    near_ip=f"10.231.{number}.1", far_ip=f"10.231.{number}.2", owns_near=False)
        _add_namespace(link.far)
        link.plug()
        return link

    def plug(self) -> None:
        """Create the veth pair and bring it up: a fresh interface with counters at zero."""
        sh("ip", "-n", self.near, "link", "add", self.near_if, "type", "veth", "peer", "name",
           self.far_if, "netns", self.far)
        sh("ip", "-n", self.near, "addr", "add", f"{self.near_ip}/30", "dev", self.near_if)
        sh("ip", "-n", self.far, "addr", "add", f"{self.far_ip}/30", "dev", self.far_if)
        sh("ip", "-n", self.far, "link", "set", self.far_if, "up")
        sh("ip", "-n", self.near, "link", "set", self.near_if, "up")
        self.wait_operstate("up")

    def static_neighbours(self) -> None:
        """Each end knows the other's address for good: no ARP probe crosses the link at a
        moment of the kernel's choosing (after a collector's last poll, say)."""
        for namespace, interface, peer_ns, peer_if, peer_ip in (
                (self.near, self.near_if, self.far, self.far_if, self.far_ip),
                (self.far, self.far_if, self.near, self.near_if, self.near_ip)):
            mac = sh("ip", "netns", "exec", peer_ns, "cat",
                     f"/sys/class/net/{peer_if}/address").strip()
            sh("ip", "-n", namespace, "neigh", "replace", peer_ip, "lladdr", mac, "dev",
               interface, "nud", "permanent")

    def wait_operstate(self, wanted: str, timeout: float = 10) -> None:
        """The carrier comes a moment after ``ip link set up``; wait for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = sh("ip", "netns", "exec", self.near, "cat",
                       f"/sys/class/net/{self.near_if}/operstate").strip()
            if state == wanted:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.near_if} did not become {wanted}")

    def unplug(self) -> None:
        sh("ip", "-n", self.near, "link", "del", self.near_if)

    def reconnect(self) -> None:
        """What a PPP reconnect looks like to the kernel: the interface goes and comes back."""
        self.unplug()
        self.plug()

    def set_up(self, up: bool) -> None:
        sh("ip", "-n", self.near, "link", "set", self.near_if, "up" if up else "down")

    def counters(self) -> tuple[int, int]:
        """``(rx, tx)`` bytes of the near interface, as the kernel counts them."""
        out = sh("ip", "netns", "exec", self.near, "cat",
                 f"/sys/class/net/{self.near_if}/statistics/rx_bytes",
                 f"/sys/class/net/{self.near_if}/statistics/tx_bytes")
        rx, tx = out.split()
        return int(rx), int(tx)

    def ifindex(self) -> int:
        return int(sh("ip", "netns", "exec", self.near, "cat",
                      f"/sys/class/net/{self.near_if}/ifindex"))

    def in_near(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.near, *command]

    def _far_server(self, mode: str, port: int) -> subprocess.Popen:
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.far, sys.executable, __file__, mode, self.far_ip,
             str(port)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "listening"
        return server

    def start_sink(self) -> subprocess.Popen:
        """A TCP service on the far side that counts what it receives, then prints the count."""
        return self._far_server("sink", PORT)

    def send(self, size: int, rate: int = 0) -> subprocess.Popen:
        """Start sending ``size`` bytes from near to far; wait on the returned process (or
        ``stop_sending`` it), which prints how many it sent."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.near, sys.executable, __file__, "send", self.far_ip,
             str(PORT), str(size), str(rate)], stdout=subprocess.PIPE, text=True)

    @staticmethod
    def stop_sending(sender: subprocess.Popen) -> int:
        """End a transfer where it is (the sender closes the connection as at its end); the
        bytes it sent."""
        sender.send_signal(signal.SIGTERM)
        out, _ = sender.communicate(timeout=60)
        assert sender.returncode == 0
        return int(out.strip())

    def start_listener(self, port: int) -> subprocess.Popen:
        """A TCP service on the far side that accepts and closes: what a probe connects to."""
        return self._far_server("listen", port)

    def transfer(self, size: int, rate: int = 0) -> int:
        """Send ``size`` bytes and return how many the far end received."""
        sink = self.start_sink()
        sender = self.send(size, rate)
        assert sender.wait(timeout=120) == 0
        out, _ = sink.communicate(timeout=60)
        return int(out.strip())

    def destroy(self) -> None:
        for namespace in (self.near, self.far) if self.owns_near else (self.far,):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def _add_namespace(namespace: str) -> None:
    sh("ip", "netns", "add", namespace)
    sh("ip", "netns", "exec", namespace, "sh", "-c",
       "for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 "
       "/proc/sys/net/ipv6/conf/default/disable_ipv6; "
       "do [ ! -e $f ] || echo 1 > $f; done")
    sh("ip", "-n", namespace, "link", "set", "lo", "up")


def _sink(host: str, port: int) -> None:
    with socket.create_server((host, port)) as server:
        print("listening", flush=True)
        connection, _ = server.accept()
        received = 0
        with connection:
            while chunk := connection.recv(1 << 16):
                received += len(chunk)
    print(received, flush=True)


def _listen(host: str, port: int) -> None:
    with socket.create_server((host, port)) as server:
        print("listening", flush=True)
        while True:
            connection, _ = server.accept()
            connection.close()


def _send(host: str, port: int, size: int, rate: int) -> None:
    chunk = b"\xa5" * (1 << 16)
    started = time.monotonic()
    sent = 0
    stopped: list[int] = []
    signal.signal(signal.SIGTERM, lambda number, _: stopped.append(number))
    with socket.create_connection((host, port), timeout=30) as connection:
        while sent < size and not stopped:
            piece = chunk[: min(len(chunk), size - sent)]
            connection.sendall(piece)
            sent += len(piece)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    print(sent, flush=True)


if __name__ == "__main__":
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "sink":
        _sink(host, port)
    elif mode == "listen":
        _listen(host, port)
    else:
        _send(host, port, int(sys.argv[4]), int(sys.argv[5]))
    sys.exit(0)

