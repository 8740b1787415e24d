//! The Prometheus endpoint, scraped and parsed by a real text-format parser.
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::TestNode;

pub(crate) fn scrape(node: &TestNode) -> prometheus_parse::Scrape {
    let mut stream =
        TcpStream::connect(("127.0.0.1", node.prometheus_port)).expect("connect metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

pub(crate) fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_errors_and_connections() {
    let node = TestNode::start();
    let session = node.session().await;
    session
        .query_unpaged(
            "CREATE KEYSPACE m WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            (),
        )
        .await
        .expect("keyspace");
    session
        .query_unpaged("CREATE TABLE m.t (k int PRIMARY KEY, v int)", ())
        .await
        .expect("table");
    for k in 0..20 {
        session
            .query_unpaged("INSERT INTO m.t (k, v) VALUES (?, ?)", (k, k))
            .await
            .expect("insert");
    }
    let _ = session.query_unpaged("SELEC nonsense", ()).await;
    // Gauges and storage counters are refreshed every 50 ms.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let scrape = scrape(&node);
    assert!(value(&scrape, "tessera_commitlog_total", &[("what", "appends")]) >= 20.0);
    assert!(value(&scrape, "tessera_rows_written_total", &[]) >= 20.0);
    assert!(
        value(
            &scrape,
            "tessera_cql_statements_total",
            &[("kind", "insert")]
        ) >= 20.0
    );
    assert!(value(&scrape, "tessera_cql_errors_total", &[("code", "0x2000")]) >= 1.0);
    assert!(value(&scrape, "tessera_cql_connections", &[]) >= 1.0);
    assert!(
        value(
            &scrape,
            "tessera_cql_requests_total",
            &[("opcode", "execute")]
        ) >= 20.0
    );
    let shards: std::collections::BTreeSet<String> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "tessera_cql_requests_total")
        .filter_map(|s| s.labels.get("shard").map(str::to_string))
        .collect();
    assert_eq!(
        shards.len(),
        2,
        "every shard exports its series: {shards:?}"
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("tessera_cql_request_latency_seconds")),
        "latency histogram present"
    );
}

fn proxy_requests(node: &TestNode, owner: &str) -> f64 {
    value(
        &scrape(node),
        "tessera_storage_proxy_requests_total",
        &[("owner", owner)],
    )
}

/// The shard-aware driver sends each prepared statement to the shard that
/// owns its partition, so the coordinator never forwards one.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_statements_land_on_their_owning_shard() {
    let node = TestNode::start();
    let session = node.session().await;
    session
        .query_unpaged(
            "CREATE KEYSPACE r WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            (),
        )
        .await
        .expect("keyspace");
    session
        .query_unpaged("CREATE TABLE r.t (k int PRIMARY KEY, v int)", ())
        .await
        .expect("table");
    let insert = session
        .prepare("INSERT INTO r.t (k, v) VALUES (?, ?)")
        .await
        .expect("prepare insert");
    let select = session
        .prepare("SELECT v FROM r.t WHERE k = ?")
        .await
        .expect("prepare select");
    // Warm up until the driver holds a connection to every shard.
    for k in 0..50 {
        session
            .execute_unpaged(&insert, (k, k))
            .await
            .expect("warm up");
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (local_before, forwarded_before) = (
        proxy_requests(&node, "local"),
        proxy_requests(&node, "forwarded"),
    );
    for k in 0..300 {
        session
            .execute_unpaged(&insert, (k, k * 2))
            .await
            .expect("insert");
        let (v,): (i32,) = session
            .execute_unpaged(&select, (k,))
            .await
            .expect("select")
            .into_rows_result()
            .expect("rows")
            .single_row()
            .expect("row");
        assert_eq!(v, k * 2);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let local = proxy_requests(&node, "local") - local_before;
    let forwarded = proxy_requests(&node, "forwarded") - forwarded_before;
    assert!(local >= 600.0, "local requests {local}");
    assert_eq!(forwarded, 0.0, "requests forwarded between shards");
}
