//! The CQL native protocol server of one shard: accepting connections,
//! reading frames, running requests concurrently and writing answers.
//!
//! Every shard listens on the CQL port (SO_REUSEPORT: the kernel spreads
//! connections). On the shard-aware port, shard 0 accepts and hands each
//! connection to shard `client port % shards` — the shard the client asked
//! for by choosing its source port — so later requests on it never hop.
//!
//! A connection has one reader (this module's loop) and one writer task.
//! Requests that touch data run as tasks of their own, so one slow request
//! does not hold the others on the connection; their answers are appended
//! to the connection's output buffer in completion order and the writer
//! sends whatever has accumulated in one write.
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use scheduler::net::{TcpListener, TcpStream};
use scheduler::sync::Semaphore;

use crate::error::CqlError;
use crate::frame::{
    encode_response, Batch, BatchQuery, Compression, ErrorCode, ErrorResponse, ErrorScope, Event,
    FrameDecoder, QueryParameters, Request, RequestFrame, Response, ResultResponse, SchemaChange,
};
use crate::processor::{ExecOptions, Outcome, QueryProcessor};

/// How many requests of one connection may run at once.
const MAX_IN_FLIGHT_PER_CONNECTION: u64 = 1024;
/// Bytes read from the socket per read call.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// How long a closing connection may take to deliver its last answers.
const CONNECTION_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server reports about requests; the node implements it with metrics.
pub trait RequestObserver {
    fn request(&self, opcode: u8);
    fn statement(&self, kind: &'static str);
    fn error(&self, code: i32);
    fn latency(&self, elapsed: Duration);
    fn connection_opened(&self);
    fn connection_closed(&self);
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub max_frame_bytes: usize,
    pub shard_aware_port: u16,
}

/// One shard's CQL server.
pub struct CqlServer {
    processor: Rc<QueryProcessor>,
    config: ServerConfig,
    observer: Rc<dyn RequestObserver>,
    stopping: Cell<bool>,
    in_flight: Cell<usize>,
    connections: RefCell<Vec<Weak<Connection>>>,
}

struct Connection {
    out: RefCell<BytesMut>,
    wake_writer: scheduler::channels::LocalSender<()>,
    keyspace: RefCell<Option<String>>,
    compression: Cell<Option<Compression>>,
    registered: Cell<bool>,
    closed: Cell<bool>,
    /// Reading has stopped: the writer exits once the output is empty.
    finishing: Cell<bool>,
    in_flight: Rc<Semaphore>,
    version: Cell<u8>,
}

impl Connection {
    fn send(&self, version: u8, stream: i16, response: &Response, warnings: &[String]) {
        if self.closed.get() {
            return;
        }
        let mut out = self.out.borrow_mut();
        let was_empty = out.is_empty();
        let compression = match response {
            Response::Ready => None,
            _ => self.compression.get(),
        };
        encode_response(&mut out, version, stream, response, warnings, compression);
        if was_empty {
            let _ = self.wake_writer.try_send(());
        }
    }
}

thread_local! {
    static SERVER: RefCell<Option<Rc<CqlServer>>> = const { RefCell::new(None) };
}

impl CqlServer {
    /// Creates this shard's server and makes it reachable for events.
    pub fn install(
        processor: Rc<QueryProcessor>,
        config: ServerConfig,
        observer: Rc<dyn RequestObserver>,
    ) -> Rc<CqlServer> {
        let server = Rc::new(CqlServer {
            processor,
            config,
            observer,
            stopping: Cell::new(false),
            in_flight: Cell::new(0),
            connections: RefCell::new(Vec::new()),
        });
        SERVER.with(|s| *s.borrow_mut() = Some(server.clone()));
        server
    }

    /// Accepts connections on the plain CQL port until stopped.
    pub async fn serve(self: Rc<Self>, listener: TcpListener) {
        while !self.stopping.get() {
            match listener.accept().await {
                Ok(stream) => {
                    let server = self.clone();
                    scheduler::spawn_local(async move { server.handle_connection(stream).await });
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a CQL connection failed");
                    scheduler::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Accepts connections on the shard-aware port (shard 0 only) and hands
    /// each to the shard its client port names.
    pub async fn serve_shard_aware(self: Rc<Self>, listener: TcpListener, shard_count: usize) {
        while !self.stopping.get() {
            let accepted = match listener.shared_accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a shard-aware connection failed");
                    scheduler::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let shard = match accepted.peer_addr() {
                Ok(peer) => usize::from(peer.port()) % shard_count,
                Err(_) => continue,
            };
            if shard == scheduler::smp::this_shard() {
                let server = self.clone();
                let stream = accepted.bind_to_executor();
                scheduler::spawn_local(async move { server.handle_connection(stream).await });
                continue;
            }
            let sent = scheduler::smp::send_to(shard, move || async move {
                let stream = accepted.bind_to_executor();
                if let Some(server) = SERVER.with(|s| s.borrow().clone()) {
                    server.handle_connection(stream).await;
                }
            })
            .await;
            if let Err(error) = sent {
                tracing::warn!(%error, shard, "handing a connection to its shard failed");
            }
        }
    }

    /// Stops accepting; waits until in-flight requests finish (or `grace` passes).
    pub async fn stop(&self, grace: Duration) {
        self.stopping.set(true);
        let started = scheduler::clock::monotonic_now();
        while self.in_flight.get() > 0 && started.elapsed() < grace {
            scheduler::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn handle_connection(self: Rc<Self>, stream: TcpStream) {
        self.observer.connection_opened();
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let (wake_writer, wake_rx) = scheduler::channels::new_bounded(1);
        let conn = Rc::new(Connection {
            out: RefCell::new(BytesMut::with_capacity(16 * 1024)),
            wake_writer,
            keyspace: RefCell::new(None),
            compression: Cell::new(None),
            registered: Cell::new(false),
            closed: Cell::new(false),
            finishing: Cell::new(false),
            in_flight: Rc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION)),
            version: Cell::new(crate::frame::MAX_VERSION),
        });
        self.connections.borrow_mut().push(Rc::downgrade(&conn));
        let writer_conn = conn.clone();
        let writer_task = scheduler::spawn_local_task(async move {
            while wake_rx.recv().await.is_some() {
                let data = writer_conn.out.borrow_mut().split().freeze();
                if !data.is_empty()
                    && (writer.write_all(&data).await.is_err() || writer.flush().await.is_err())
                {
                    break;
                }
                if !writer_conn.out.borrow().is_empty() {
                    let _ = writer_conn.wake_writer.try_send(());
                } else if writer_conn.finishing.get() {
                    break;
                }
            }
            writer_conn.closed.set(true);
            let _ = writer.close().await;
        });
        self.read_loop(&conn, &mut reader).await;
        // The peer is gone or the connection is being closed: let requests
        // in flight answer and every queued answer (a protocol error, say)
        // reach the socket, but never wait on a peer that stopped reading
        // for longer than the drain timeout.
        let drained = scheduler::with_timeout(CONNECTION_DRAIN_TIMEOUT, async {
            while conn.in_flight.available() < MAX_IN_FLIGHT_PER_CONNECTION && !conn.closed.get() {
                scheduler::sleep(Duration::from_millis(1)).await;
            }
            conn.finishing.set(true);
            let _ = conn.wake_writer.try_send(());
            writer_task.await;
        })
        .await;
        if drained.is_none() {
            tracing::debug!("closing a connection whose answers could not be delivered in time");
        }
        conn.closed.set(true);
        self.connections
            .borrow_mut()
            .retain(|c| c.strong_count() > 0);
        self.observer.connection_closed();
    }

    async fn read_loop(
        self: &Rc<Self>,
        conn: &Rc<Connection>,
        reader: &mut (impl futures_lite::AsyncRead + Unpin),
    ) {
        let mut decoder = FrameDecoder::new(self.config.max_frame_bytes);
        let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        // When the bytes of the frames being decoded were read: a request's
        // latency counts from there, so one clock read serves every request
        // of a read, and waiting behind earlier requests of it is counted.
        let mut arrived = scheduler::clock::monotonic_now();
        loop {
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        if !self.dispatch(conn, &mut decoder, frame, arrived).await {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => match error.scope() {
                        ErrorScope::Stream { stream, version } => {
                            self.report_error(error.to_response().code);
                            conn.send(version, stream, &Response::Error(error.to_response()), &[]);
                        }
                        ErrorScope::AnswerThenClose { stream, version } => {
                            self.report_error(error.to_response().code);
                            conn.send(version, stream, &Response::Error(error.to_response()), &[]);
                            return;
                        }
                        ErrorScope::CurrentFrame | ErrorScope::Fatal => return,
                    },
                }
            }
            if conn.closed.get() {
                return;
            }
            let filled = buf.len();
            buf.resize(filled + READ_CHUNK_BYTES, 0);
            match reader.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.truncate(filled + n),
            }
            arrived = scheduler::clock::monotonic_now();
        }
    }

    fn report_error(&self, code: ErrorCode) {
        self.observer.error(code as i32);
    }

    /// Handles one frame; returns false to close the connection.
    async fn dispatch(
        self: &Rc<Self>,
        conn: &Rc<Connection>,
        decoder: &mut FrameDecoder,
        frame: RequestFrame,
        arrived: scheduler::clock::Instant,
    ) -> bool {
        self.observer.request(frame.opcode as u8);
        let version = frame.version;
        let stream = frame.stream;
        conn.version.set(version);
        let request = match Request::decode(version, frame.opcode, frame.body) {
            Ok(request) => request,
            Err(error) => {
                self.report_error(error.to_response().code);
                conn.send(version, stream, &Response::Error(error.to_response()), &[]);
                return true;
            }
        };
        match request {
            Request::Startup(options) => {
                let response = self.startup(conn, decoder, &options);
                conn.send(version, stream, &response, &[]);
            }
            Request::Options => {
                conn.send(version, stream, &Response::Supported(self.supported()), &[])
            }
            Request::Register(events) => {
                conn.registered
                    .set(events.iter().any(|e| e == "SCHEMA_CHANGE"));
                conn.send(version, stream, &Response::Ready, &[]);
            }
            Request::AuthResponse(_) => {
                let error = ErrorResponse::new(
                    ErrorCode::ProtocolError,
                    "Unexpected AUTH_RESPONSE: authentication is not enabled",
                );
                conn.send(version, stream, &Response::Error(error), &[]);
            }
            request => {
                let Ok(permit) = conn.in_flight.acquire_static_permit(1).await else {
                    return false;
                };
                let server = self.clone();
                let conn = conn.clone();
                self.in_flight.set(self.in_flight.get() + 1);
                let mut task = Box::pin(async move {
                    let (response, warnings) = server.run_request_guarded(&conn, request).await;
                    conn.send(version, stream, &response, &warnings);
                    server.observer.latency(arrived.elapsed());
                    server.in_flight.set(server.in_flight.get() - 1);
                    drop(permit);
                });
                // Most requests (a write or read served from this shard's
                // memtable) finish on their first poll: run that poll here
                // and spawn a task only for a request that has to wait.
                if futures_lite::future::poll_once(&mut task).await.is_none() {
                    scheduler::spawn_local(task);
                }
            }
        }
        true
    }

    fn startup(
        &self,
        conn: &Connection,
        decoder: &mut FrameDecoder,
        options: &[(String, String)],
    ) -> Response {
        for (key, value) in options {
            if key.eq_ignore_ascii_case("COMPRESSION") {
                match Compression::parse(value) {
                    Some(compression) => {
                        conn.compression.set(Some(compression));
                        decoder.set_compression(Some(compression));
                    }
                    None => {
                        return Response::Error(ErrorResponse::new(
                            ErrorCode::ProtocolError,
                            format!("Unknown compression algorithm: {value}"),
                        ))
                    }
                }
            }
        }
        Response::Ready
    }

    fn supported(&self) -> Vec<(String, Vec<String>)> {
        let shard = scheduler::smp::this_shard();
        let shards = scheduler::smp::shard_count();
        let one = |k: &str, v: String| (k.to_string(), vec![v]);
        vec![
            one("CQL_VERSION", "3.4.5".into()),
            one("COMPRESSION", "lz4".into()),
            (
                "PROTOCOL_VERSIONS".into(),
                vec!["3/v3".into(), "4/v4".into()],
            ),
            one("SCYLLA_SHARD", shard.to_string()),
            one("SCYLLA_NR_SHARDS", shards.to_string()),
            one(
                "SCYLLA_PARTITIONER",
                "org.apache.cassandra.dht.Murmur3Partitioner".into(),
            ),
            one(
                "SCYLLA_SHARDING_ALGORITHM",
                "biased-token-round-robin".into(),
            ),
            one("SCYLLA_SHARDING_IGNORE_MSB", "12".into()),
            one(
                "SCYLLA_SHARD_AWARE_PORT",
                self.config.shard_aware_port.to_string(),
            ),
        ]
    }

    /// Runs a request; a bug that panics fails only this request (an internal
    /// error to the client, a log line with the panic) and not the shard.
    async fn run_request_guarded(
        &self,
        conn: &Connection,
        request: Request,
    ) -> (Response, Vec<String>) {
        match scheduler::guard::guarded(self.run_request(conn, request)).await {
            Ok(answer) => answer,
            Err(message) => {
                tracing::error!(%message, "internal error while executing a request");
                let error = CqlError::Server(format!("internal error: {message}"));
                self.report_error(error.code());
                (Response::Error(error.to_response()), Vec::new())
            }
        }
    }

    async fn run_request(&self, conn: &Connection, request: Request) -> (Response, Vec<String>) {
        let keyspace = conn.keyspace.borrow().clone();
        let result = match request {
            Request::Query { query, params } => {
                self.query(&query, params, keyspace.as_deref()).await
            }
            // PREPARE and BATCH are boxed: their futures are large, and
            // every request's future is as large as its largest branch.
            Request::Prepare { query } => Box::pin(self.prepare(&query, keyspace.as_deref())).await,
            Request::Execute { id, params } => self.execute(&id, params, keyspace.as_deref()).await,
            Request::Batch(batch) => Box::pin(self.batch(batch, keyspace.as_deref())).await,
            _ => Err(CqlError::Protocol("unexpected request".into())),
        };
        match result {
            Ok(outcome) => {
                if let ResultResponse::SetKeyspace(ks) = &outcome.result {
                    *conn.keyspace.borrow_mut() = Some(ks.clone());
                }
                if let Some(change) = outcome.schema_change {
                    Box::pin(broadcast_schema_change(change)).await;
                }
                (Response::Result(outcome.result), outcome.warnings)
            }
            Err(error) => {
                let response = error.to_response();
                self.report_error(response.code);
                if matches!(error, CqlError::Server(_)) {
                    tracing::error!(%error, "request failed");
                }
                (Response::Error(response), Vec::new())
            }
        }
    }

    async fn query(
        &self,
        query: &str,
        params: QueryParameters,
        keyspace: Option<&str>,
    ) -> Result<Outcome, CqlError> {
        let prepared = self.processor.prepare(query, keyspace)?;
        self.observer.statement(prepared.kind());
        let values = self.processor.positional_values(&prepared, params.values)?;
        let options = exec_options(
            params.page_size,
            params.paging_state,
            params.timestamp,
            params.skip_metadata,
        );
        self.processor
            .execute(&prepared, &values, &options, keyspace)
            .await
    }

    async fn prepare(&self, query: &str, keyspace: Option<&str>) -> Result<Outcome, CqlError> {
        let prepared = self.processor.prepare(query, keyspace)?;
        // Every shard learns the statement, so EXECUTE works on any connection.
        let text = query.to_string();
        let ks = keyspace.map(str::to_string);
        let _ = scheduler::smp::submit_to_all(move || {
            let text = text.clone();
            let ks = ks.clone();
            async move {
                if let Some(server) = SERVER.with(|s| s.borrow().clone()) {
                    let _ = server.processor.prepare(&text, ks.as_deref());
                }
            }
        })
        .await;
        Ok(Outcome {
            result: ResultResponse::Prepared(prepared.response()),
            warnings: Vec::new(),
            schema_change: None,
        })
    }

    async fn execute(
        &self,
        id: &bytes::Bytes,
        params: QueryParameters,
        keyspace: Option<&str>,
    ) -> Result<Outcome, CqlError> {
        let prepared = self.processor.prepared(id)?;
        self.observer.statement(prepared.kind());
        let values = self.processor.positional_values(&prepared, params.values)?;
        let options = exec_options(
            params.page_size,
            params.paging_state,
            params.timestamp,
            params.skip_metadata,
        );
        self.processor
            .execute(&prepared, &values, &options, keyspace)
            .await
    }

    async fn batch(&self, batch: Batch, keyspace: Option<&str>) -> Result<Outcome, CqlError> {
        self.observer.statement("batch");
        let mut items = Vec::with_capacity(batch.statements.len());
        for statement in batch.statements {
            let prepared = match &statement.query {
                BatchQuery::Query(text) => self.processor.prepare(text, keyspace)?,
                BatchQuery::Prepared(id) => self.processor.prepared(id)?,
            };
            items.push((prepared, statement.values));
        }
        self.processor.execute_batch(&items, batch.timestamp).await
    }
}

fn exec_options(
    page_size: Option<i32>,
    paging_state: Option<bytes::Bytes>,
    timestamp: Option<i64>,
    skip_metadata: bool,
) -> ExecOptions {
    ExecOptions {
        page_size,
        paging_state,
        timestamp,
        skip_metadata,
    }
}

/// Sends a SCHEMA_CHANGE event to every registered connection on every shard.
pub async fn broadcast_schema_change(change: SchemaChange) {
    let _ = scheduler::smp::submit_to_all(move || {
        let change = change.clone();
        async move {
            let Some(server) = SERVER.with(|s| s.borrow().clone()) else {
                return;
            };
            let event = Response::Event(Event::SchemaChange(change));
            for conn in server.connections.borrow().iter().filter_map(Weak::upgrade) {
                if conn.registered.get() {
                    conn.send(conn.version.get(), -1, &event, &[]);
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_bytes<A, B, C, F: std::future::Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request's future is boxed (and so copied, whole) once: it must
    /// not carry the state of rare statements (scans, system tables, list
    /// read-before-write are boxed where they are awaited) or copies of its
    /// inner futures. 3 048 bytes when this bound was set.
    #[test]
    fn a_request_future_stays_small() {
        let request_bytes = future_bytes(
            |server: &'static CqlServer, conn: &'static Connection, request: Request| {
                server.run_request(conn, request)
            },
        );
        assert!(
            request_bytes <= 3200,
            "request future of {request_bytes} bytes"
        );
    }
}
