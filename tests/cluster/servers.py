"""Real Redis deployments for the tests, started from Debian's `redis-server` and `redis-cli`:

- `ClusterSet`: a 6-node Redis Cluster, 3 masters + 3 replicas, made with `redis-cli --cluster create`;
  nodes time out after 1 s, so a killed master's replica takes over within a few seconds.
- `SentinelSet`: 1 master, 1 replica, 3 sentinels (`redis-server --sentinel`), quorum 2, a master down
  after 1 s.

Both optionally speak TLS only (a throwaway CA made with `openssl`) and require a password. Every process
is ours: killed by pid when the set stops. Ports are free ones picked at start (a cluster node also needs
port + 10000 for its bus).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import missing

HOST = "127.0.0.1"


def debian_binary(name: str) -> str:
    """`name` from Debian's redis-server / redis-tools (on PATH); skip (fail in CI) when absent."""
    path = shutil.which(name)
    if not path:
        missing(f"{name} is not installed (apt-get install redis-server redis-tools)")
    return str(path)


def free_ports(n: int, *, bus: bool = False) -> list[int]:
    """`n` distinct free loopback ports (with `bus`: port + 10000 free too, for a cluster bus)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port in ports or (bus and (port + 10000 > 65535 or not _free(port + 10000))):
            continue
        ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def make_tls(folder: Path) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1 (openssl), as the paths redis-server wants."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = shutil.which("openssl") or missing("openssl is not installed")
    ca_key, ca, key, csr, cert = (str(folder / n) for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt"))
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for args in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2"]
        + ["-subj", "/CN=affectstream-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert]
        + ["-days", "2", "-extfile", str(ext)],
    ):
        subprocess.run([str(openssl), *args], check=True, capture_output=True)
    return {"ca": ca, "cert": cert, "key": key}


class _Processes:
    def __init__(self, root: Path, *, tls: bool = False, password: str = "") -> None:
        self.root = root
        self.tls = make_tls(root / "tls") if tls else {}
        self.password = password
        self.procs: dict[int, subprocess.Popen] = {}  # port -> process

    def _port_args(self, port: int) -> list[str]:
        if not self.tls:
            return ["--port", str(port)]
        t = self.tls
        return [
            *[
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--tls-cert-file",
                t["cert"],
                "--tls-key-file",
                t["key"],
            ],
            *["--tls-ca-cert-file", t["ca"], "--tls-auth-clients", "no", "--tls-replication", "yes"],
        ]

    def _common(self, port: int) -> list[str]:
        folder = self.root / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        auth = ["--requirepass", self.password, "--masterauth", self.password] if self.password else []
        return [
            *self._port_args(port),
            *["--bind", HOST, "--dir", str(folder), "--logfile", str(folder / "redis.log")],
            *["--save", "", "--appendonly", "no", "--daemonize", "no"],
            *["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"],
            *auth,
        ]

    def start(self, port: int, args: list[str], config: Path | None = None) -> None:
        cmd = [debian_binary("redis-server"), *([str(config)] if config else []), *args]
        self.procs[port] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def client(self, port: int, **kw) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": self.tls["ca"]} if self.tls else {}
        return redis.Redis(HOST, port, password=self.password or None, socket_timeout=2, **tls, **kw)

    def wait(self, what: str, ok, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if ok():
                    return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready within {timeout_s:.0f} s (logs under {self.root})")
            time.sleep(0.1)

    def kill(self, port: int) -> None:
        """SIGKILL one server (a crash: no shutdown, no save)."""
        proc = self.procs.pop(port)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def pause(self, port: int) -> None:
        """SIGSTOP one server: it reads nothing, replication to it included, until `resume`."""
        os.kill(self.procs[port].pid, signal.SIGSTOP)

    def resume(self, port: int) -> None:
        os.kill(self.procs[port].pid, signal.SIGCONT)

    def stop(self) -> None:
        for proc in self.procs.values():
            os.kill(proc.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def userinfo(self) -> str:
        return f":{self.password}@" if self.password else ""

    def query(self, extra: dict[str, str] | None = None) -> str:
        params = {"ssl_ca_certs": self.tls["ca"]} if self.tls else {}
        params.update(extra or {})
        return ("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else ""


class ClusterSet(_Processes):
    """Six cluster nodes on free ports; `url` is the `redis+cluster://` (or `rediss+cluster://`) URL."""

    def __init__(self, root: Path, *, tls: bool = False, password: str = "") -> None:
        super().__init__(root, tls=tls, password=password)
        self.ports = free_ports(6, bus=True)

    @property
    def url(self) -> str:
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        nodes = ",".join(f"{HOST}:{p}" for p in self.ports[:3])
        return f"{scheme}://{self.userinfo()}{nodes}{self.query()}"

    def start_all(self) -> ClusterSet:
        for port in self.ports:
            folder = self.root / str(port)
            args = self._common(port) + [
                *["--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")],
                *["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"],
            ]
            if self.tls:
                args += ["--tls-cluster", "yes"]
            self.start(port, args)
        for port in self.ports:
            self.wait(f"node {port}", lambda p=port: self.client(p).ping())
        cli = [debian_binary("redis-cli")]
        if self.tls:
            cli += ["--tls", "--cacert", self.tls["ca"]]
        if self.password:
            cli += ["-a", self.password, "--no-auth-warning"]
        create = [*cli, "--cluster", "create", *(f"{HOST}:{p}" for p in self.ports)]
        subprocess.run([*create, "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True)
        self.wait("cluster", self.healthy)
        return self

    def healthy(self) -> bool:
        """Every live node says the cluster is ok, and sees 3 masters, each with a replica in sync."""
        for port in self.procs:
            info = self.client(port).execute_command("CLUSTER INFO")  # redis-py parses it into a dict
            if info["cluster_state"] != "ok" or int(info["cluster_size"]) != 3:
                return False
        replicas = [p for p in self.procs if self.client(p).info("replication")["role"] == "slave"]
        return len(replicas) == len(self.procs) - 3 and all(
            self.client(p).info("replication")["master_link_status"] == "up" for p in replicas
        )

    def cluster_client(self) -> RedisCluster:
        tls = {"ssl": True, "ssl_ca_certs": self.tls["ca"]} if self.tls else {}
        nodes = [ClusterNode(HOST, p) for p in self.procs]
        return RedisCluster(startup_nodes=nodes, password=self.password or None, **tls)

    def master_of(self, key: str) -> int:
        """The port of the master serving `key`'s slot."""
        client = self.cluster_client()
        try:
            return int(client.get_node_from_key(key).port)
        finally:
            client.close()

    def replica_of(self, master: int) -> int:
        for port in self.procs:
            info = self.client(port).info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master:
                return port
        raise LookupError(f"no replica of {master}")


class SentinelSet(_Processes):
    """A master, its replica and three sentinels watching it as `service`."""

    def __init__(
        self,
        root: Path,
        *,
        tls: bool = False,
        password: str = "",
        sentinel_password: str = "",
        service: str = "affect",
    ) -> None:
        super().__init__(root, tls=tls, password=password)
        self.sentinel_password = sentinel_password
        self.service = service
        self.master, self.replica, *self.sentinels = free_ports(5)

    def url(self, db: int = 0) -> str:
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        nodes = ",".join(f"{HOST}:{p}" for p in self.sentinels)
        extra = {"sentinel_password": self.sentinel_password} if self.sentinel_password else {}
        return f"{scheme}://{self.userinfo()}{nodes}/{self.service}/{db}{self.query(extra)}"

    def start_all(self) -> SentinelSet:
        self.start(self.master, self._common(self.master))
        self.start(self.replica, self._common(self.replica) + ["--replicaof", HOST, str(self.master)])
        self.wait(
            "replica", lambda: self.client(self.replica).info("replication")["master_link_status"] == "up"
        )
        for port in self.sentinels:
            folder = self.root / f"sentinel-{port}"
            folder.mkdir(parents=True, exist_ok=True)
            lines = [
                f"sentinel monitor {self.service} {HOST} {self.master} 2",
                f"sentinel down-after-milliseconds {self.service} 1000",
                f"sentinel failover-timeout {self.service} 4000",
            ]
            if self.password:
                lines.append(f"sentinel auth-pass {self.service} {self.password}")
            if self.sentinel_password:
                lines.append(f"requirepass {self.sentinel_password}")
            config = folder / "sentinel.conf"
            config.write_text("\n".join(lines) + "\n")
            args = [
                "--sentinel",
                *self._port_args(port),
                *["--bind", HOST, "--dir", str(folder), "--logfile", str(folder / "sentinel.log")],
            ]
            self.start(port, args, config)
        self.wait("sentinels", lambda: all(self._sees_replica(p) for p in self.sentinels))
        return self

    def sentinel_client(self, port: int) -> redis.Redis:
        tls = {"ssl": True, "ssl_ca_certs": self.tls["ca"]} if self.tls else {}
        return redis.Redis(HOST, port, password=self.sentinel_password or None, socket_timeout=2, **tls)

    def _sees_replica(self, port: int) -> bool:
        sentinel = self.sentinel_client(port)
        return (
            bool(sentinel.sentinel_slaves(self.service))
            and len(sentinel.sentinel_sentinels(self.service)) == 2
        )

    def named_master(self) -> int:
        """The master's port as a sentinel names it."""
        for port in self.sentinels:
            try:
                return int(self.sentinel_client(port).sentinel_get_master_addr_by_name(self.service)[1])
            except (redis.RedisError, TypeError):
                continue
        raise LookupError("no sentinel answers")
