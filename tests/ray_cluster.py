"""A real Ray cluster of several nodes on this machine: `ray start --block` per node, own ports and temp folders.

Each node is one `ray start --block` process in its own process group: killing the group
(SIGKILL) is a machine dying, and at the end every node's group is killed by its id and
checked gone (no process left naming the node's temp folder).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.pg_server import _free_port

RAY = Path(sys.executable).parent / "ray"
REPO = Path(__file__).resolve().parent.parent


def _free_block(size: int) -> int:
    """The first port of `size` consecutive ports that are free now (Ray's worker port range)."""
    import socket

    for _ in range(50):
        base = _free_port()
        if base + size > 65000:
            continue
        try:
            socks = []
            for port in range(base, base + size):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError("no block of free ports")


@dataclass
class RayNode:
    name: str
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path

    def kill(self) -> None:
        """SIGKILL the node's whole process group (raylet, agents, workers): a machine that dies."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def leftovers(self) -> list[int]:
        """Processes still naming this node's temp folder on their command line."""
        mine = str(self.temp_dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mine in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found


@dataclass
class LocalRayCluster:
    head_port: int
    dashboard_port: int
    root: Path
    env: dict[str, str]
    nodes: list[RayNode] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)
    """Ports given to a component already: a port found free is released before Ray binds it, so the next
    search can find it again (a node once got its metrics port inside its own worker range and would not start)."""

    def __post_init__(self) -> None:
        self.taken |= {self.head_port, self.dashboard_port}

    def _port(self) -> int:
        """A free port no component of this cluster was given."""
        for _ in range(100):
            port = _free_port()
            if port not in self.taken:
                self.taken.add(port)
                return port
        raise RuntimeError("no free port left that this cluster has not given out")

    def _block(self, size: int) -> int:
        """The first of `size` consecutive free ports, none given out before."""
        for _ in range(50):
            base = _free_block(size)
            if not self.taken & set(range(base, base + size)):
                self.taken |= set(range(base, base + size))
                return base
        raise RuntimeError("no block of free ports that this cluster has not given out")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.head_port}"

    @property
    def client_env(self) -> dict[str, str]:
        """What a driver needs to join: this cluster's own token (never the user's ~/.ray)."""
        return {key: self.env[key] for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}

    def add_node(self, name: str, *, cpus: int, head: bool = False) -> RayNode:
        temp_dir = self.root / name
        temp_dir.mkdir()
        log = self.root / f"{name}.log"
        base = self._block(20)
        ports = ["--min-worker-port", str(base), "--max-worker-port", str(base + 19)]
        ports += ["--node-manager-port", str(self._port()), "--object-manager-port", str(self._port()),
                  "--dashboard-agent-listen-port", str(self._port()), "--dashboard-agent-grpc-port", str(self._port()),
                  "--runtime-env-agent-port", str(self._port()), "--metrics-export-port", str(self._port())]
        role = (["--head", "--port", str(self.head_port), "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                 "--dashboard-port", str(self.dashboard_port), "--ray-client-server-port", str(self._port())]
                if head else ["--address", self.address])
        command = [str(RAY), "start", "--block", *role, "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                   "--num-gpus", "0", "--object-store-memory", str(128 << 20), "--temp-dir", str(temp_dir),
                   "--disable-usage-stats", "--resources", f'{{"{name}": 1}}', *ports]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        node = RayNode(name, process, temp_dir, log)
        self.nodes.append(node)
        return node

    def wait_for_nodes(self, count: int, timeout: float = 180.0) -> None:
        """Until `ray status` lists `count` alive nodes (each node carries a resource named after it)."""
        deadline = time.monotonic() + timeout
        names = [node.name for node in self.nodes]
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"ray node {node.name} exited:\n{node.log.read_text()[-3000:]}")
            status = subprocess.run([str(RAY), "status", "--address", self.address], env=self.env, capture_output=True,
                                    text=True)
            if status.returncode == 0 and sum(f" {name}" in status.stdout for name in names) >= count:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout:.0f} s")

    def stop(self) -> list[int]:
        """Kill every node's process group by its id; returns the pids of anything left behind."""
        for node in reversed(self.nodes):
            node.kill()
        time.sleep(1.0)
        left = [pid for node in self.nodes for pid in node.leftovers()]
        shutil.rmtree(self.root, ignore_errors=True)
        return left


def start_head(env: dict[str, str], cpus: int = 1) -> LocalRayCluster:
    """The head node (with a dashboard); the tree's modules come first on every worker's path."""
    root = Path(tempfile.mkdtemp(prefix="ts-ray-"))  # short: Ray's socket paths must fit in 107 bytes
    node_env = {**env, "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                # a dead node is noticed in about 3 s instead of Ray's default 30 s or so
                "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                "RAY_health_check_failure_threshold": "3"}
    head_port, dashboard_port = _free_port(), _free_port()
    while dashboard_port == head_port:
        dashboard_port = _free_port()
    cluster = LocalRayCluster(head_port, dashboard_port, root, node_env)
    cluster.add_node("head", cpus=cpus, head=True)
    return cluster
