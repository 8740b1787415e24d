//! Node metrics: the per-shard series and the HTTP endpoint Prometheus scrapes.
//!
//! Design:
//! - One process-wide [`MetricsRegistry`] holds each metric family once; every series carries a
//!   `shard="N"` label. A shard asks for its [`ShardMetrics`] once at start, which resolves all
//!   of that shard's children up front (one per opcode, statement kind and known error code).
//!   The hot path is then a relaxed atomic add on a child no other shard touches: no label
//!   lookup, no lock, no shared cache line. Looking children up per increment would take the
//!   family's label-map lock, which every shard shares.
//! - Per-shard registries merged at scrape time were the alternative; they need a merge step
//!   that keeps one `# TYPE` line per family, and buy nothing once children are pre-resolved.
//! - The endpoint answers GET /metrics only, served on shard 0 by the node's minimal HTTP
//!   server (`crate::http`), shared with the operations API.

mod io_queue;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::http::{HttpServer, Reply, Request};

/// Prefix of every metric name.
const NAMESPACE: &str = "tessera";

/// Latency buckets in seconds: 50 µs to 10 s in 1-2.5-5 steps.
const LATENCY_BUCKETS_SECONDS: [f64; 17] = [
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
    1.0, 2.5, 5.0, 10.0,
];

/// The request opcodes of the CQL protocol and their label values.
const REQUEST_OPCODES: [(u8, &str); 8] = [
    (0x01, "startup"),
    (0x05, "options"),
    (0x07, "query"),
    (0x09, "prepare"),
    (0x0A, "execute"),
    (0x0B, "register"),
    (0x0D, "batch"),
    (0x0F, "auth_response"),
];

/// The error codes of the CQL protocol, pre-resolved so that counting one never takes a lock.
const ERROR_CODES: [u32; 20] = [
    0x0000, 0x000A, 0x0100, 0x1000, 0x1001, 0x1002, 0x1003, 0x1100, 0x1200, 0x1300, 0x1400, 0x1500,
    0x1600, 0x1700, 0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500,
];

/// The kind of a CQL statement, for `cql_statements_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    Batch,
    /// CREATE, ALTER, DROP, TRUNCATE of keyspaces, tables, types, indexes, roles.
    Ddl,
    Use,
    Other,
}

impl StatementKind {
    const ALL: [StatementKind; 8] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Batch,
        Self::Ddl,
        Self::Use,
        Self::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Batch => "batch",
            Self::Ddl => "ddl",
            Self::Use => "use",
            Self::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The metric families of the process; cheap to clone (shared).
#[derive(Clone)]
pub struct MetricsRegistry {
    families: Arc<Families>,
}

struct Families {
    registry: Registry,
    requests: IntCounterVec,
    statements: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    connections: IntGaugeVec,
    connections_total: IntCounterVec,
    memtable_bytes: IntGaugeVec,
    rows_read: IntCounterVec,
    rows_written: IntCounterVec,
    proxy_requests: IntCounterVec,
    commitlog: IntCounterVec,
    storage: IntCounterVec,
    sstables: IntGaugeVec,
    chunk_cache: IntCounterVec,
    chunk_cache_bytes: IntGaugeVec,
    io_queue: io_queue::IoQueueCollector,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let family = IntCounterVec::new(opts(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(family.clone()))
        .expect("metric names are unique");
    family
}

fn gauge_vec(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let family = IntGaugeVec::new(opts(name, help), &["shard"]).expect("valid metric definition");
    registry
        .register(Box::new(family.clone()))
        .expect("metric names are unique");
    family
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRegistry {
    /// A fresh registry with every family registered (tests use their own; the server uses
    /// [`MetricsRegistry::global`]).
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let latency_opts = HistogramOpts::new(
            "cql_request_latency_seconds",
            "CQL request latency from frame decoded to response queued",
        )
        .namespace(NAMESPACE)
        .buckets(LATENCY_BUCKETS_SECONDS.to_vec());
        let latency = HistogramVec::new(latency_opts, &["shard"]).expect("valid buckets");
        registry
            .register(Box::new(latency.clone()))
            .expect("metric names are unique");
        let io_queue = io_queue::IoQueueCollector::new();
        registry
            .register(Box::new(io_queue.clone()))
            .expect("metric names are unique");
        let families = Families {
            io_queue,
            requests: counter_vec(
                r,
                "cql_requests_total",
                "CQL requests by opcode",
                &["shard", "opcode"],
            ),
            statements: counter_vec(
                r,
                "cql_statements_total",
                "CQL statements executed by kind",
                &["shard", "kind"],
            ),
            errors: counter_vec(
                r,
                "cql_errors_total",
                "CQL ERROR responses by error code",
                &["shard", "code"],
            ),
            latency,
            connections: gauge_vec(r, "cql_connections", "Open CQL connections"),
            connections_total: counter_vec(
                r,
                "cql_connections_total",
                "CQL connections accepted",
                &["shard"],
            ),
            memtable_bytes: gauge_vec(r, "memtable_bytes", "Bytes held in memtables"),
            rows_read: counter_vec(r, "rows_read_total", "Rows read by the replica", &["shard"]),
            rows_written: counter_vec(
                r,
                "rows_written_total",
                "Rows written by the replica",
                &["shard"],
            ),
            commitlog: counter_vec(
                r,
                "commitlog_total",
                "Commitlog activity: entries appended, bytes appended, syncs, \
                 segments created, segments recycled",
                &["shard", "what"],
            ),
            storage: counter_vec(
                r,
                "storage_total",
                "Storage engine activity: memtable flushes (and failed ones), bytes \
                 flushed, SSTable partition reads (and failed ones: checksum or IO \
                 errors), compactions (and failed ones), bytes compacted in and out, \
                 writes held back waiting for a flush",
                &["shard", "what"],
            ),
            sstables: gauge_vec(r, "sstables", "Live SSTables"),
            chunk_cache: counter_vec(
                r,
                "chunk_cache_total",
                "SSTable chunk cache: hits, misses (chunks read from disk), evictions",
                &["shard", "what"],
            ),
            chunk_cache_bytes: gauge_vec(
                r,
                "chunk_cache_bytes",
                "Bytes of decompressed SSTable chunks held in the cache",
            ),
            proxy_requests: counter_vec(
                r,
                "storage_proxy_requests_total",
                "Single-partition requests by where their data lives: on this shard (local) \
                 or sent to the owning shard (forwarded)",
                &["shard", "owner"],
            ),
            registry,
        };
        Self {
            families: Arc::new(families),
        }
    }

    /// The process-wide registry the server exports.
    pub fn global() -> &'static MetricsRegistry {
        static GLOBAL: OnceLock<MetricsRegistry> = OnceLock::new();
        GLOBAL.get_or_init(MetricsRegistry::new)
    }

    /// Resolves every series of `shard_id`; call once per shard and clone the result.
    pub fn shard(&self, shard_id: u32) -> ShardMetrics {
        ShardMetrics {
            children: Arc::new(ShardChildren::resolve(
                &self.families,
                &shard_id.to_string(),
            )),
        }
    }

    /// Every family in the Prometheus text exposition format (version 0.0.4).
    pub fn encode_text(&self) -> String {
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&self.families.registry.gather(), &mut text)
            .expect("encoding to a String cannot fail");
        text
    }
}

/// The metrics of the shard `shard_id` in the global registry.
pub fn shard(shard_id: u32) -> ShardMetrics {
    MetricsRegistry::global().shard(shard_id)
}

/// One shard's pre-resolved series; cheap to clone. Counting is a relaxed atomic add on
/// series no other shard writes.
#[derive(Clone)]
pub struct ShardMetrics {
    children: Arc<ShardChildren>,
}

struct ShardChildren {
    shard: String,
    requests: [IntCounter; REQUEST_OPCODES.len()],
    requests_other: IntCounter,
    statements: [IntCounter; StatementKind::ALL.len()],
    errors: [IntCounter; ERROR_CODES.len()],
    errors_family: IntCounterVec,
    latency: Histogram,
    connections: IntGauge,
    connections_total: IntCounter,
    memtable_bytes: IntGauge,
    rows_read: IntCounter,
    rows_written: IntCounter,
    proxy_local: IntCounter,
    proxy_forwarded: IntCounter,
    commitlog: [IntCounter; COMMITLOG_SERIES.len()],
    storage: [IntCounter; STORAGE_SERIES.len()],
    sstables: IntGauge,
    chunk_cache: [IntCounter; 3],
    chunk_cache_bytes: IntGauge,
    io_queue: io_queue::IoQueueSlot,
}

/// The storage counters, in the order `set_storage` takes them.
pub const STORAGE_SERIES: [&str; 10] = [
    "flushes",
    "flush_failures",
    "flushed_bytes",
    "sstable_reads",
    "sstable_read_errors",
    "compactions",
    "compaction_failures",
    "compacted_bytes_in",
    "compacted_bytes_out",
    "write_stalls",
];

/// The commitlog counters, in the order `set_commitlog` takes them.
const COMMITLOG_SERIES: [&str; 5] = [
    "appends",
    "bytes_appended",
    "syncs",
    "segments_created",
    "segments_recycled",
];

impl ShardChildren {
    fn resolve(families: &Families, shard: &str) -> Self {
        let labelled =
            |family: &IntCounterVec, value: &str| family.with_label_values(&[shard, value]);
        Self {
            requests: REQUEST_OPCODES.map(|(_, name)| labelled(&families.requests, name)),
            requests_other: labelled(&families.requests, "other"),
            statements: StatementKind::ALL
                .map(|kind| labelled(&families.statements, kind.as_str())),
            errors: ERROR_CODES.map(|code| labelled(&families.errors, &error_code_label(code))),
            errors_family: families.errors.clone(),
            latency: families.latency.with_label_values(&[shard]),
            connections: families.connections.with_label_values(&[shard]),
            connections_total: families.connections_total.with_label_values(&[shard]),
            memtable_bytes: families.memtable_bytes.with_label_values(&[shard]),
            rows_read: families.rows_read.with_label_values(&[shard]),
            rows_written: families.rows_written.with_label_values(&[shard]),
            proxy_local: labelled(&families.proxy_requests, "local"),
            proxy_forwarded: labelled(&families.proxy_requests, "forwarded"),
            commitlog: COMMITLOG_SERIES.map(|what| labelled(&families.commitlog, what)),
            storage: STORAGE_SERIES.map(|what| labelled(&families.storage, what)),
            sstables: families.sstables.with_label_values(&[shard]),
            chunk_cache: ["hits", "misses", "evictions"]
                .map(|what| labelled(&families.chunk_cache, what)),
            chunk_cache_bytes: families.chunk_cache_bytes.with_label_values(&[shard]),
            io_queue: families.io_queue.slot(shard),
            shard: shard.to_owned(),
        }
    }
}

fn error_code_label(code: u32) -> String {
    format!("{code:#06x}")
}

impl ShardMetrics {
    /// Counts one request frame with CQL `opcode` (unknown opcodes count as `other`).
    pub fn request(&self, opcode: u8) {
        let c = &self.children;
        let index = REQUEST_OPCODES.iter().position(|(op, _)| *op == opcode);
        index.map_or(&c.requests_other, |i| &c.requests[i]).inc();
    }

    /// Counts one executed statement.
    pub fn statement(&self, kind: StatementKind) {
        self.children.statements[kind.index()].inc();
    }

    /// Counts one ERROR response with CQL error `code`.
    pub fn error(&self, code: u32) {
        let c = &self.children;
        match ERROR_CODES.iter().position(|known| *known == code) {
            Some(i) => c.errors[i].inc(),
            // Codes outside the protocol's list are rare enough to pay for a label lookup.
            None => c
                .errors_family
                .with_label_values(&[c.shard.as_str(), &error_code_label(code)])
                .inc(),
        }
    }

    /// Records one request's latency.
    pub fn observe_latency(&self, latency: Duration) {
        self.children.latency.observe(latency.as_secs_f64());
    }

    /// Counts a newly accepted CQL connection.
    pub fn connection_opened(&self) {
        self.children.connections.inc();
        self.children.connections_total.inc();
    }

    /// Counts a closed CQL connection.
    pub fn connection_closed(&self) {
        self.children.connections.dec();
    }

    /// Sets the bytes this shard's memtables hold.
    pub fn set_memtable_bytes(&self, bytes: u64) {
        self.children
            .memtable_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    #[cfg(test)]
    pub fn rows_read(&self, rows: u64) {
        self.children.rows_read.inc_by(rows);
    }

    #[cfg(test)]
    pub fn rows_written(&self, rows: u64) {
        self.children.rows_written.inc_by(rows);
    }

    /// Brings the row counters up to the storage engine's running totals.
    pub fn set_rows(&self, read_total: u64, written_total: u64) {
        let read = &self.children.rows_read;
        read.inc_by(read_total.saturating_sub(read.get()));
        let written = &self.children.rows_written;
        written.inc_by(written_total.saturating_sub(written.get()));
    }

    /// Brings the commitlog counters up to the shard's running totals, in
    /// the order of `COMMITLOG_SERIES`.
    pub fn set_commitlog(&self, totals: [u64; COMMITLOG_SERIES.len()]) {
        for (counter, total) in self.children.commitlog.iter().zip(totals) {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// Brings the storage counters up to the shard's running totals, in the
    /// order of `STORAGE_SERIES`, and sets the live SSTable count.
    pub fn set_storage(&self, totals: [u64; STORAGE_SERIES.len()], sstables: usize) {
        for (counter, total) in self.children.storage.iter().zip(totals) {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.children
            .sstables
            .set(i64::try_from(sstables).unwrap_or(i64::MAX));
    }

    /// Replaces the shard's IO scheduler snapshot (`scheduler::io_stats()`),
    /// exported as `tessera_io_queue_*{shard, class}`.
    pub fn set_io_queue(&self, stats: Vec<scheduler::ioqueue::IoClassStats>) {
        *self
            .children
            .io_queue
            .lock()
            .expect("metrics lock is never poisoned") = stats;
    }

    /// Brings the chunk cache counters (hits, misses, evictions) up to the
    /// shard's running totals and sets the bytes it holds.
    pub fn set_chunk_cache(&self, totals: [u64; 3], held_bytes: u64) {
        for (counter, total) in self.children.chunk_cache.iter().zip(totals) {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        self.children
            .chunk_cache_bytes
            .set(i64::try_from(held_bytes).unwrap_or(i64::MAX));
    }

    /// Brings the storage proxy counters up to the shard's running totals.
    pub fn set_proxy_requests(&self, local_total: u64, forwarded_total: u64) {
        let local = &self.children.proxy_local;
        local.inc_by(local_total.saturating_sub(local.get()));
        let forwarded = &self.children.proxy_forwarded;
        forwarded.inc_by(forwarded_total.saturating_sub(forwarded.get()));
    }
}

/// The Prometheus endpoint: a bound listener and the registry it exports.
pub struct MetricsServer {
    server: HttpServer,
    registry: MetricsRegistry,
}

impl MetricsServer {
    /// Binds the listener; must be called on a glommio executor thread.
    pub fn bind(addr: SocketAddr, registry: MetricsRegistry) -> io::Result<Self> {
        let server = HttpServer::bind(addr, "metrics")?;
        Ok(Self { server, registry })
    }

    #[cfg(test)]
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.server.local_addr()
    }

    /// Accepts and serves connections forever; dropping the task that runs it stops it.
    pub async fn run(self) -> io::Result<()> {
        let registry = self.registry;
        self.server
            .run(move |request| {
                let reply = respond(&registry, &request);
                async move { reply }
            })
            .await
    }
}

/// Answers GET (or HEAD) /metrics with the registry's text.
fn respond(registry: &MetricsRegistry, request: &Request) -> Reply {
    if request.path() != "/metrics" {
        return Reply::status_only(404);
    }
    if request.method != "GET" && request.method != "HEAD" {
        return Reply::status_only(405);
    }
    Reply {
        status: 200,
        content_type: format!("{}; charset=utf-8", prometheus::TEXT_FORMAT),
        body: registry.encode_text().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{encode, parse_request, Incoming, Parsed, MAX_REQUEST_BYTES};
    use std::io::{Read as _, Write as _};

    fn sample_registry() -> MetricsRegistry {
        let registry = MetricsRegistry::new();
        let shard0 = registry.shard(0);
        let shard1 = registry.shard(1);
        shard0.request(0x07);
        shard0.request(0x07);
        shard0.request(0x42);
        shard1.request(0x0A);
        shard0.statement(StatementKind::Select);
        shard1.statement(StatementKind::Insert);
        shard0.error(0x2200);
        shard1.error(0x9999);
        shard0.observe_latency(Duration::from_micros(70));
        shard0.observe_latency(Duration::from_secs(20));
        shard1.connection_opened();
        shard1.connection_opened();
        shard1.connection_closed();
        shard0.set_memtable_bytes(4096);
        shard0.rows_read(3);
        shard1.rows_written(5);
        shard1.set_io_queue(sample_io_stats());
        registry
    }

    /// IO scheduler stats as a shard reports them: compaction did two
    /// requests, one of 20 µs in the disk and one of 3 ms.
    fn sample_io_stats() -> Vec<scheduler::ioqueue::IoClassStats> {
        use scheduler::ioqueue::{Histogram, IoClass, IoClassStats};
        IoClass::ALL
            .iter()
            .map(|class| {
                let mut disk_time = Histogram::default();
                let mut ops = 0;
                if *class == IoClass::Compaction {
                    disk_time.observe(20_000);
                    disk_time.observe(3_000_000);
                    ops = 2;
                }
                IoClassStats {
                    class: *class,
                    shares: class.default_shares(),
                    ops,
                    bytes: ops * 4096,
                    cost_ns: 0,
                    queue_length: u64::from(*class == IoClass::Query),
                    in_flight: 0,
                    queued_time: Histogram::default(),
                    disk_time,
                }
            })
            .collect()
    }

    fn parse(text: &str) -> prometheus_parse::Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).expect("valid exposition text")
    }

    /// The value of the one sample named `metric` whose labels include every pair.
    fn value(
        scrape: &prometheus_parse::Scrape,
        metric: &str,
        labels: &[(&str, &str)],
    ) -> prometheus_parse::Value {
        let mut found = scrape.samples.iter().filter(|s| {
            s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        });
        let sample = found
            .next()
            .unwrap_or_else(|| panic!("no {metric} {labels:?}"));
        assert!(found.next().is_none(), "several {metric} {labels:?}");
        sample.value.clone()
    }

    fn check_scrape(text: &str) {
        use prometheus_parse::Value::{Counter, Gauge, Histogram};
        let scrape = parse(text);
        let v = |metric: &str, labels: &[(&str, &str)]| value(&scrape, metric, labels);
        assert_eq!(
            v(
                "tessera_cql_requests_total",
                &[("shard", "0"), ("opcode", "query")]
            ),
            Counter(2.0)
        );
        assert_eq!(
            v(
                "tessera_cql_requests_total",
                &[("shard", "0"), ("opcode", "other")]
            ),
            Counter(1.0)
        );
        assert_eq!(
            v(
                "tessera_cql_requests_total",
                &[("shard", "1"), ("opcode", "execute")]
            ),
            Counter(1.0)
        );
        assert_eq!(
            v(
                "tessera_cql_requests_total",
                &[("shard", "1"), ("opcode", "query")]
            ),
            Counter(0.0)
        );
        assert_eq!(
            v(
                "tessera_cql_statements_total",
                &[("shard", "0"), ("kind", "select")]
            ),
            Counter(1.0)
        );
        assert_eq!(
            v(
                "tessera_cql_statements_total",
                &[("shard", "1"), ("kind", "insert")]
            ),
            Counter(1.0)
        );
        assert_eq!(
            v(
                "tessera_cql_errors_total",
                &[("shard", "0"), ("code", "0x2200")]
            ),
            Counter(1.0)
        );
        assert_eq!(
            v(
                "tessera_cql_errors_total",
                &[("shard", "1"), ("code", "0x9999")]
            ),
            Counter(1.0)
        );
        assert_eq!(v("tessera_cql_connections", &[("shard", "1")]), Gauge(1.0));
        assert_eq!(
            v("tessera_cql_connections_total", &[("shard", "1")]),
            Counter(2.0)
        );
        assert_eq!(
            v("tessera_memtable_bytes", &[("shard", "0")]),
            Gauge(4096.0)
        );
        assert_eq!(
            v("tessera_rows_read_total", &[("shard", "0")]),
            Counter(3.0)
        );
        assert_eq!(
            v("tessera_rows_written_total", &[("shard", "1")]),
            Counter(5.0)
        );
        let io = |metric: &str, class: &str| v(metric, &[("shard", "1"), ("class", class)]);
        assert_eq!(io("tessera_io_queue_ops_total", "compaction"), Counter(2.0));
        assert_eq!(
            io("tessera_io_queue_bytes_total", "compaction"),
            Counter(8192.0)
        );
        assert_eq!(io("tessera_io_queue_length", "query"), Gauge(1.0));
        assert_eq!(io("tessera_io_queue_shares", "flush"), Gauge(400.0));
        let Histogram(disk) = io("tessera_io_queue_disk_seconds", "compaction") else {
            panic!("disk time is a histogram");
        };
        let disk_count = |le: f64| disk.iter().find(|b| b.less_than == le).map(|b| b.count);
        assert_eq!(disk_count(10e-6), Some(0.0));
        assert_eq!(disk_count(25e-6), Some(1.0));
        assert_eq!(disk_count(5e-3), Some(2.0));
        assert_eq!(disk_count(f64::INFINITY), Some(2.0));
        let Histogram(buckets) = v("tessera_cql_request_latency_seconds", &[("shard", "0")]) else {
            panic!("latency is a histogram");
        };
        let count = |le: f64| buckets.iter().find(|b| b.less_than == le).map(|b| b.count);
        assert_eq!(count(50e-6), Some(0.0));
        assert_eq!(count(100e-6), Some(1.0));
        assert_eq!(count(10.0), Some(1.0));
        assert_eq!(count(f64::INFINITY), Some(2.0));
    }

    #[test]
    fn text_has_every_series_labelled_by_shard() {
        check_scrape(&sample_registry().encode_text());
    }

    fn answer(registry: &MetricsRegistry, head: &[u8]) -> (String, bool) {
        let Parsed::Done(Incoming::Request(request)) = parse_request(head) else {
            panic!("complete head");
        };
        let response = encode(&request, &respond(registry, &request));
        (
            String::from_utf8(response.bytes).expect("utf-8"),
            response.close,
        )
    }

    #[test]
    fn responses_follow_method_path_and_connection() {
        let registry = sample_registry();
        let (text, close) = answer(&registry, b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n"));
        assert!(text.contains("Content-Type: text/plain; version=0.0.4") && !close);
        let (text, close) = answer(
            &registry,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
        );
        assert!(text.starts_with("HTTP/1.1 405 ") && close, "{text}");
        let (text, close) = answer(&registry, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 ") && text.contains("Connection: close") && close);
        let (text, close) = answer(&registry, b"GET / HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 404 ") && !close);
    }

    /// Sends `request` and reads one response: (status, connection header, body).
    fn exchange(stream: &mut std::net::TcpStream, request: &str) -> (u16, String, String) {
        stream.write_all(request.as_bytes()).expect("send request");
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) =
                response.parse(&buffer).expect("valid response")
            {
                let header = |name: &str| {
                    let h = response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name));
                    String::from_utf8_lossy(h.expect("header present").value).into_owned()
                };
                let length: usize = header("content-length").parse().expect("numeric length");
                if buffer.len() >= head + length {
                    let body = String::from_utf8_lossy(&buffer[head..head + length]).into_owned();
                    return (response.code.expect("status"), header("connection"), body);
                }
            }
            let read = stream.read(&mut chunk).expect("read response");
            assert!(read > 0, "server closed mid-response");
            buffer.extend_from_slice(&chunk[..read]);
        }
    }

    fn client_checks(addr: SocketAddr) {
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        // Two requests on one kept-alive connection.
        let (status, connection, body) =
            exchange(&mut stream, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!((status, connection.as_str()), (200, "keep-alive"));
        check_scrape(&body);
        let (status, connection, _) = exchange(
            &mut stream,
            "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!((status, connection.as_str()), (404, "close"));
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("server closes");
        assert!(rest.is_empty());

        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        let (status, _, _) = exchange(&mut stream, "BLAH\0 / HTTP/9\r\n\r\n");
        assert_eq!(status, 400);

        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST_BYTES)
        );
        let (status, connection, _) = exchange(&mut stream, &huge);
        assert_eq!((status, connection.as_str()), (431, "close"));
    }

    #[test]
    fn serves_metrics_over_http() {
        let registry = sample_registry();
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("glommio executor");
        executor.run(async move {
            let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
            let server = MetricsServer::bind(localhost, registry).expect("bind");
            let addr = server.local_addr().expect("bound address");
            let _server = glommio::spawn_local(server.run());
            let client = std::thread::spawn(move || client_checks(addr));
            while !client.is_finished() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            if let Err(panic) = client.join() {
                std::panic::resume_unwind(panic);
            }
        });
    }
}
