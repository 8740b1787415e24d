"""Starts a real tessera node for the Python driver and cqlsh tests.

The binary is the one cargo built for the Rust integration tests
(TESSERA_BIN, default target/debug/tessera).
"""
import os
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_reservations = []


def free_port():
    # tessera listens with SO_REUSEPORT, so two nodes given one port would
    # share it. Reserve each port with a bound (not listening) SO_REUSEPORT
    # socket held for the whole session: the node can still bind it, any
    # other test's plain bind fails on it (the Rust harness does the same).
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 32768:
            # Stay below the ephemeral range the kernel hands to clients.
            port = 10000 + port % 20000
        try:
            with socket.socket() as plain:
                plain.bind(("127.0.0.1", port))
        except OSError:
            continue
        held = socket.socket()
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            held.bind(("127.0.0.1", port))
        except OSError:
            held.close()
            continue
        _reservations.append(held)
        return port


class Node:
    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="tessera-py-")
        self.port = free_port()
        self.aware_port = free_port()
        self.metrics_port = free_port()
        binary = os.environ.get("TESSERA_BIN", os.path.join(ROOT, "target", "debug", "tessera"))
        data = os.path.join(self.dir.name, "data")
        self.log_path = os.path.join(self.dir.name, "tessera.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--smp", "2",
             "--native-transport-port", str(self.port),
             "--native-shard-aware-transport-port", str(self.aware_port),
             "--prometheus-port", str(self.metrics_port),
             "--api-port", str(free_port()),
             "--data-file-directories", os.path.join(data, "data"),
             "--commitlog-directory", os.path.join(data, "commitlog")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tessera exited early:\n" + open(self.log_path).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tessera did not start:\n" + open(self.log_path).read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def node():
    n = Node()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def cluster(node):
    from cassandra.cluster import Cluster
    c = Cluster(["127.0.0.1"], port=node.port, protocol_version=4)
    yield c
    c.shutdown()


@pytest.fixture(scope="session")
def session(cluster):
    return cluster.connect()


@pytest.fixture
def keyspace(session):
    name = "py_" + uuid.uuid4().hex[:12]
    session.execute(
        "CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % name)
    yield name
    session.execute("DROP KEYSPACE IF EXISTS %s" % name)
