//! The yardstick of the CQL benchmark: a CQL server that does no work.
//!
//! It speaks the native protocol with the node's own codec (`cql::frame`) on
//! one shard of the node's own runtime (`scheduler`), and answers every
//! request with a canned response built at start-up: READY, SUPPORTED, the
//! `system.local` / `system.peers` rows the `scylla` driver reads when it
//! connects, PREPARED metadata for the benchmark's two statements, VOID for
//! the INSERT and one fixed row for the SELECT. It stores nothing, parses no
//! CQL and keeps no state but the frame decoder of each connection.
//!
//! What it costs per request is therefore the floor any CQL server on this
//! runtime pays: socket reads and writes, frame decoding, request decoding and
//! response encoding. The load generator (`loadgen.rs`) measures the node and
//! this responder the same way, and the ratio of their operations per
//! server-CPU-second says how much the node spends above that floor.
//!
//! Why not an existing mock (the driver's test proxy, a Python server): they
//! would measure a different runtime and codec, so the ratio would mix the
//! node's statement work with unrelated differences in the transport.
//!
//! Run it with `cargo bench --bench responder -- --port 9343` (see README.md).
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use cql::frame::primitives::{put_bytes, put_int};
use cql::frame::{
    encode_response, ColumnSpec, ColumnType, Compression, ErrorCode, ErrorResponse, ErrorScope,
    FrameDecoder, Prepared, PreparedMetadata, Request, Response, ResultMetadata, ResultResponse,
    RowsWriter,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use scheduler::net::{TcpListener, TcpStream};

/// The node's allocator (`src/main.rs`), so the yardstick runs on the same.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest request frame accepted (the node's default is 16 MiB too).
const MAX_FRAME_BYTES: usize = 16 << 20;
/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Keyspace and table the benchmark's statements name (see `loadgen.rs`).
const KEYSPACE: &str = "bench";
const TABLE: &str = "kv";
/// Prepared statement ids: fixed, 16 bytes like the node's.
const INSERT_ID: &[u8; 16] = b"responder-insert";
const SELECT_ID: &[u8; 16] = b"responder-select";
/// The `host_id` and `schema_version` the responder reports.
const HOST_ID: [u8; 16] = [
    0x7e, 0x55, 0xe7, 0xa0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1,
];
const SCHEMA_VERSION: [u8; 16] = [
    0x7e, 0x55, 0xe7, 0xa0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 2,
];

/// Command line of the responder.
#[derive(Debug, Clone, Parser)]
#[command(about = "A do-nothing CQL server, the yardstick of the CQL benchmark")]
struct Args {
    /// Address to listen on; also the `rpc_address` reported in `system.local`.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// CQL port.
    #[arg(long, default_value_t = 9343)]
    port: u16,
    /// Size of the `v` blob in the canned SELECT row (match the load generator's).
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = scheduler::ShardSetConfig {
        name: "responder".to_string(),
        ..scheduler::ShardSetConfig::new(1)
    };
    let results = scheduler::run_shards(config, move |_shard| {
        let args = args.clone();
        async move { serve(args).await }
    })?;
    results.into_iter().collect()
}

/// Accepts connections forever; each is served on this shard.
async fn serve(args: Args) -> anyhow::Result<()> {
    let canned = Rc::new(Canned::new(&args));
    let listener = TcpListener::bind((args.host, args.port))
        .map_err(|error| anyhow::anyhow!("listen on {}:{}: {error}", args.host, args.port))?;
    eprintln!("responder: listening on {}:{}", args.host, args.port);
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let canned = canned.clone();
                scheduler::spawn_local(async move { serve_connection(&canned, stream).await });
            }
            Err(error) => eprintln!("responder: accept failed: {error}"),
        }
    }
}

/// What one connection remembers between frames.
struct ConnectionState {
    decoder: FrameDecoder,
    compression: Option<Compression>,
}

/// Reads requests and writes the answers to everything one read brought in
/// with a single write, until the client goes away.
async fn serve_connection(canned: &Canned, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut state = ConnectionState {
        decoder: FrameDecoder::new(MAX_FRAME_BYTES),
        compression: None,
    };
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    // Reads land here and only the bytes read are copied into `input`, so a
    // read does not zero a fresh chunk of `input` first.
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let keep_open = answer_frames(canned, &mut state, &mut input, &mut output);
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if !keep_open {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Answers every whole frame in `input`; returns false to close the connection.
fn answer_frames(
    canned: &Canned,
    state: &mut ConnectionState,
    input: &mut BytesMut,
    output: &mut BytesMut,
) -> bool {
    loop {
        let frame = match state.decoder.decode(input) {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(error) => {
                let (ErrorScope::Stream { stream, version }
                | ErrorScope::AnswerThenClose { stream, version }) = error.scope()
                else {
                    return false;
                };
                let response = Response::Error(error.to_response());
                encode_response(output, version, stream, &response, &[], None);
                if matches!(error.scope(), ErrorScope::AnswerThenClose { .. }) {
                    return false;
                }
                continue;
            }
        };
        let response = match Request::decode(frame.version, frame.opcode, frame.body) {
            Ok(Request::Startup(options)) => startup(state, &options),
            Ok(request) => canned.answer(request),
            Err(error) => Cow::Owned(Response::Error(error.to_response())),
        };
        let compression = match *response {
            Response::Ready => None,
            _ => state.compression,
        };
        encode_response(
            output,
            frame.version,
            frame.stream,
            &response,
            &[],
            compression,
        );
    }
}

/// Accepts STARTUP, switching on compression if the client asks for it.
fn startup(state: &mut ConnectionState, options: &[(String, String)]) -> Cow<'static, Response> {
    let asked = options
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("COMPRESSION"));
    if let Some((_, name)) = asked {
        let Some(compression) = Compression::parse(name) else {
            let message = format!("Unknown compression algorithm: {name}");
            let error = ErrorResponse::new(ErrorCode::ProtocolError, message);
            return Cow::Owned(Response::Error(error));
        };
        state.compression = Some(compression);
        state.decoder.set_compression(Some(compression));
    }
    Cow::Owned(Response::Ready)
}

/// Every answer the responder gives, built once so that answering a request
/// allocates nothing.
struct Canned {
    supported: Response,
    ready: Response,
    void: Response,
    local: Response,
    schema_version: Response,
    peers: Response,
    prepared_insert: Response,
    prepared_select: Response,
    select_row: Response,
    /// The SELECT row for a client that asked to skip the metadata.
    select_row_bare: Response,
}

impl Canned {
    fn new(args: &Args) -> Canned {
        let value = vec![0x5a; args.value_bytes];
        let select_row = |no_metadata| {
            let mut rows = RowsWriter::new(1);
            rows.push_value(Some(&value));
            rows.end_row();
            rows_response(rows, bench_columns(&[("v", ColumnType::Blob)]), no_metadata)
        };
        Canned {
            supported: Response::Supported(supported()),
            ready: Response::Ready,
            void: Response::Result(ResultResponse::Void),
            local: local_row(args.host),
            schema_version: schema_version_row(),
            peers: peers_rows(),
            prepared_insert: prepared(
                INSERT_ID,
                &[("k", ColumnType::Bigint), ("v", ColumnType::Blob)],
                &[],
            ),
            prepared_select: prepared(
                SELECT_ID,
                &[("k", ColumnType::Bigint)],
                &[("v", ColumnType::Blob)],
            ),
            select_row: select_row(false),
            select_row_bare: select_row(true),
        }
    }

    /// The answer to any request but STARTUP.
    fn answer(&self, request: Request) -> Cow<'_, Response> {
        match request {
            Request::Options => Cow::Borrowed(&self.supported),
            Request::Register(_) => Cow::Borrowed(&self.ready),
            Request::Query { query, .. } => self.query(&query),
            Request::Prepare { query } => self.prepare(&query),
            Request::Execute { id, params } => self.execute(&id, params.skip_metadata),
            Request::Batch(_) => Cow::Borrowed(&self.void),
            Request::Startup(_) | Request::AuthResponse(_) => {
                invalid(ErrorCode::ProtocolError, "unexpected request")
            }
        }
    }

    /// The driver's own queries on connect; nothing else is served.
    fn query(&self, query: &str) -> Cow<'_, Response> {
        if query.contains("system.local") && query.contains("schema_version") {
            Cow::Borrowed(&self.schema_version)
        } else if query.contains("system.local") {
            Cow::Borrowed(&self.local)
        } else if query.contains("system.peers") {
            Cow::Borrowed(&self.peers)
        } else {
            invalid(ErrorCode::Invalid, "the responder answers no such query")
        }
    }

    fn prepare(&self, query: &str) -> Cow<'_, Response> {
        let verb = query.trim_start().get(..6).unwrap_or_default();
        if verb.eq_ignore_ascii_case("INSERT") {
            Cow::Borrowed(&self.prepared_insert)
        } else if verb.eq_ignore_ascii_case("SELECT") {
            Cow::Borrowed(&self.prepared_select)
        } else {
            invalid(
                ErrorCode::Invalid,
                "the responder prepares INSERT and SELECT only",
            )
        }
    }

    fn execute(&self, id: &Bytes, skip_metadata: bool) -> Cow<'_, Response> {
        if id.as_ref() == INSERT_ID {
            Cow::Borrowed(&self.void)
        } else if id.as_ref() == SELECT_ID && skip_metadata {
            Cow::Borrowed(&self.select_row_bare)
        } else if id.as_ref() == SELECT_ID {
            Cow::Borrowed(&self.select_row)
        } else {
            invalid(ErrorCode::Unprepared, "unknown prepared statement id")
        }
    }
}

fn invalid(code: ErrorCode, message: &str) -> Cow<'static, Response> {
    Cow::Owned(Response::Error(ErrorResponse::new(code, message)))
}

/// SUPPORTED: one shard and no shard-aware port, as the node at `--smp 1`
/// looks to a driver that opens one connection per shard.
fn supported() -> Vec<(String, Vec<String>)> {
    let one = |key: &str, value: &str| (key.to_string(), vec![value.to_string()]);
    vec![
        one("CQL_VERSION", "3.4.5"),
        one("COMPRESSION", "lz4"),
        (
            "PROTOCOL_VERSIONS".to_string(),
            vec!["3/v3".to_string(), "4/v4".to_string()],
        ),
        one("SCYLLA_SHARD", "0"),
        one("SCYLLA_NR_SHARDS", "1"),
        one(
            "SCYLLA_PARTITIONER",
            "org.apache.cassandra.dht.Murmur3Partitioner",
        ),
        one("SCYLLA_SHARDING_ALGORITHM", "biased-token-round-robin"),
        one("SCYLLA_SHARDING_IGNORE_MSB", "12"),
    ]
}

fn columns(keyspace: &str, table: &str, names: &[(&str, ColumnType)]) -> Vec<ColumnSpec> {
    names
        .iter()
        .map(|(name, ty)| ColumnSpec {
            keyspace: keyspace.to_string(),
            table: table.to_string(),
            name: (*name).to_string(),
            ty: ty.clone(),
        })
        .collect()
}

fn bench_columns(names: &[(&str, ColumnType)]) -> Vec<ColumnSpec> {
    columns(KEYSPACE, TABLE, names)
}

fn prepared(
    id: &'static [u8; 16],
    binds: &[(&str, ColumnType)],
    results: &[(&str, ColumnType)],
) -> Response {
    let result_metadata = if results.is_empty() {
        ResultMetadata::empty()
    } else {
        ResultMetadata {
            columns: bench_columns(results).into(),
            paging_state: None,
            no_metadata: false,
        }
    };
    Response::Result(ResultResponse::Prepared(Prepared {
        id: Bytes::from_static(id),
        metadata: PreparedMetadata {
            columns: bench_columns(binds),
            pk_indexes: vec![0],
        },
        result_metadata,
    }))
}

fn rows_response(rows: RowsWriter, columns: Vec<ColumnSpec>, no_metadata: bool) -> Response {
    let metadata = ResultMetadata {
        columns: columns.into(),
        paging_state: None,
        no_metadata,
    };
    let rows = rows
        .finish(metadata)
        .expect("every canned row has as many cells as its metadata has columns");
    Response::Result(ResultResponse::Rows(rows))
}

/// The columns the driver reads from `system.peers` and `system.local`.
fn node_columns(table: &str) -> Vec<(&'static str, ColumnType)> {
    let mut names = vec![
        ("host_id", ColumnType::Uuid),
        ("rpc_address", ColumnType::Inet),
        ("data_center", ColumnType::Varchar),
        ("rack", ColumnType::Varchar),
        ("tokens", ColumnType::Set(Box::new(ColumnType::Varchar))),
    ];
    if table == "local" {
        names.push(("cluster_name", ColumnType::Varchar));
    }
    names
}

/// `system.local` as the driver's topology query reads it: this node owns
/// one token.
fn local_row(rpc_address: IpAddr) -> Response {
    let names = node_columns("local");
    let mut rows = RowsWriter::new(names.len());
    rows.push_value(Some(&HOST_ID));
    match rpc_address {
        IpAddr::V4(v4) => rows.push_value(Some(&v4.octets())),
        IpAddr::V6(v6) => rows.push_value(Some(&v6.octets())),
    }
    rows.push_value(Some(b"datacenter1"));
    rows.push_value(Some(b"rack1"));
    rows.push_with(|out| {
        put_int(out, 1);
        put_bytes(out, Some(b"0"));
    });
    rows.push_value(Some(b"Responder Cluster"));
    rows.end_row();
    rows_response(rows, columns("system", "local", &names), false)
}

/// No peers: a one-node cluster.
fn peers_rows() -> Response {
    let names = node_columns("peers");
    let rows = RowsWriter::new(names.len());
    rows_response(rows, columns("system", "peers", &names), false)
}

/// The schema version, for a driver waiting for schema agreement.
fn schema_version_row() -> Response {
    let mut rows = RowsWriter::new(1);
    rows.push_value(Some(&SCHEMA_VERSION));
    rows.end_row();
    let names = [("schema_version", ColumnType::Uuid)];
    rows_response(rows, columns("system", "local", &names), false)
}
