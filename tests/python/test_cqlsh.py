"""cqlsh, the real one from PyPI, against a real node."""
import os
import subprocess
import sys


def cqlsh(node, command):
    binary = os.path.join(os.path.dirname(sys.executable), "cqlsh")
    result = subprocess.run(
        [binary, "127.0.0.1", str(node.port), "-e", command],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_select_and_describe(node, session, keyspace):
    session.execute("CREATE TABLE %s.users (id int PRIMARY KEY, name text, tags set<text>)" % keyspace)
    session.execute("INSERT INTO %s.users (id, name, tags) VALUES (1, 'ada', {'x', 'y'})" % keyspace)
    out = cqlsh(node, "SELECT id, name, tags FROM %s.users" % keyspace)
    assert "ada" in out and "(1 rows)" in out
    out = cqlsh(node, "DESCRIBE KEYSPACE %s" % keyspace)
    assert "CREATE KEYSPACE %s" % keyspace in out
    assert "CREATE TABLE %s.users" % keyspace in out
    out = cqlsh(node, "DESCRIBE TABLE %s.users" % keyspace)
    assert "tags set<text>" in out
