"""DataStax's Python driver against a real node: connect, metadata, DML, paging, prepared statements."""
import datetime
import decimal
import uuid

from cassandra import InvalidRequest
from cassandra.query import SimpleStatement, BatchStatement
import pytest


def test_connects_and_sees_local_node(session, cluster):
    row = session.execute("SELECT release_version, cluster_name FROM system.local WHERE key='local'").one()
    assert row.cluster_name == "Test Cluster"
    hosts = cluster.metadata.all_hosts()
    assert len(hosts) == 1


def test_schema_metadata_after_ddl(session, cluster, keyspace):
    session.execute("CREATE TYPE %s.addr (street text, zip int)" % keyspace)
    session.execute(
        "CREATE TABLE %s.t (a int, b text, c timestamp, v frozen<addr>, l list<int>, s int static, "
        "PRIMARY KEY ((a, b), c)) WITH CLUSTERING ORDER BY (c DESC) AND comment = 'hello'" % keyspace)
    assert cluster.control_connection.wait_for_schema_agreement()
    cluster.refresh_schema_metadata()
    ks = cluster.metadata.keyspaces[keyspace]
    table = ks.tables["t"]
    assert [c.name for c in table.partition_key] == ["a", "b"]
    assert [c.name for c in table.clustering_key] == ["c"]
    assert table.options["comment"] == "hello"
    assert "addr" in ks.user_types
    cql = table.export_as_string()
    assert "CLUSTERING ORDER BY (c DESC)" in cql
    assert "s int static" in cql


def test_dml_round_trip(session, keyspace):
    session.execute("CREATE TABLE %s.t (k uuid PRIMARY KEY, d decimal, ts timestamp, m map<text, int>)" % keyspace)
    k = uuid.uuid4()
    ts = datetime.datetime(2020, 5, 17, 12, 30, 1, 123000)
    session.execute("INSERT INTO %s.t (k, d, ts, m) VALUES (%%s, %%s, %%s, %%s)" % keyspace,
                    (k, decimal.Decimal("123.4500"), ts, {"a": 1, "b": 2}))
    row = session.execute("SELECT d, ts, m FROM %s.t WHERE k = %%s" % keyspace, (k,)).one()
    assert row.d == decimal.Decimal("123.4500")
    assert row.ts == ts
    assert dict(row.m) == {"a": 1, "b": 2}


def test_prepared_and_paging(session, keyspace):
    session.execute("CREATE TABLE %s.t (p int, c int, v text, PRIMARY KEY (p, c))" % keyspace)
    insert = session.prepare("INSERT INTO %s.t (p, c, v) VALUES (?, ?, ?)" % keyspace)
    for c in range(250):
        session.execute(insert, (1, c, "v%d" % c))
    statement = SimpleStatement("SELECT c FROM %s.t WHERE p = 1" % keyspace, fetch_size=40)
    assert [r.c for r in session.execute(statement)] == list(range(250))


def test_batch_and_errors(session, keyspace):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % keyspace)
    insert = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % keyspace)
    batch = BatchStatement()
    for k in range(10):
        batch.add(insert, (k, k * k))
    session.execute(batch)
    assert session.execute("SELECT COUNT(*) FROM %s.t" % keyspace).one()[0] == 10
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM %s.nosuch" % keyspace)


def test_protocol_v3_and_lz4(node, keyspace):
    from cassandra import connection
    from cassandra.cluster import Cluster
    assert "lz4" in connection.locally_supported_compressions, "pip install lz4"
    cluster = Cluster(["127.0.0.1"], port=node.port, protocol_version=3, compression="lz4")
    try:
        session = cluster.connect()
        session.execute("CREATE TABLE %s.v3 (k int PRIMARY KEY, d date, s smallint)" % keyspace)
        session.execute("INSERT INTO %s.v3 (k, d, s) VALUES (1, '2020-02-29', 7)" % keyspace)
        row = session.execute("SELECT d, s FROM %s.v3 WHERE k = 1" % keyspace).one()
        assert str(row.d) == "2020-02-29" and row.s == 7
    finally:
        cluster.shutdown()


def test_protocol_negotiation_downgrades_from_v5(node):
    from cassandra.cluster import Cluster
    cluster = Cluster(["127.0.0.1"], port=node.port)
    try:
        cluster.connect()
        assert cluster.protocol_version == 4
    finally:
        cluster.shutdown()
