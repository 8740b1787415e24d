//! The minimal HTTP/1.1 server behind the node's two HTTP endpoints: the Prometheus
//! metrics (`metrics.rs`) and the operations API (`api.rs`).
//!
//! Design:
//! - A glommio listener on shard 0, request heads parsed with `httparse`, one task per
//!   connection. A general HTTP server (hyper, axum) would bring in a second async runtime
//!   for two endpoints that answer a handful of requests a minute.
//! - Requests are bounded in size (heads only: request bodies are never read, and a
//!   request carrying one is answered and its connection closed), connections in number
//!   and idle time.
//! - The server owns the protocol (keep-alive, HEAD, malformed and oversize heads); a
//!   handler sees a parsed [`Request`] and returns a [`Reply`] (status, type, body).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::{TcpListener, TcpStream};

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Most connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 32;
/// A connection idle (or stalled) this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request head as far as the endpoints care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target: path and query string.
    pub target: String,
    keep_alive: bool,
    /// The request carries a body, which is never read: answer, then close.
    has_body: bool,
    /// Bytes of the head, so pipelined requests after it stay in the buffer.
    consumed: usize,
}

impl Request {
    /// The target's path, without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The (percent-decoded) value of query parameter `name`, if present.
    pub fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }
}

/// Decodes `%XX` escapes and `+` (a space in query strings); bad escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a handler answers: the server adds the status line and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8".into(),
            body: body.into().into_bytes(),
        }
    }

    /// A JSON reply; `body` is JSON text already.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "application/json".into(),
            body: body.into().into_bytes(),
        }
    }

    /// An error as JSON: `{"message": ..., "code": status}`.
    pub fn error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "message": message, "code": status });
        Self::json(status, body.to_string())
    }

    /// The status's reason phrase as a plain-text body.
    pub fn status_only(status: u16) -> Self {
        Self::text(status, format!("{}\n", reason(status)))
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A bound listener, served by [`HttpServer::run`].
pub struct HttpServer {
    listener: TcpListener,
    /// Names the endpoint in log lines.
    name: &'static str,
}

impl HttpServer {
    /// Binds the listener; must be called on a glommio executor thread.
    pub fn bind(addr: SocketAddr, name: &'static str) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        Ok(Self { listener, name })
    }

    /// The address bound (a test binds port 0).
    #[cfg(test)]
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts and serves connections forever, answering each request with `handler`;
    /// dropping the task that runs it stops it. Connection tasks are detached and end on
    /// their own within [`IDLE_TIMEOUT`] of their last request.
    pub async fn run<H, Fut>(self, handler: H) -> io::Result<()>
    where
        H: Fn(Request) -> Fut + Clone + 'static,
        Fut: Future<Output = Reply> + 'static,
    {
        let open = Rc::new(Cell::new(0usize));
        let name = self.name;
        loop {
            let stream = match self.listener.accept().await {
                Ok(stream) => stream,
                Err(error) => {
                    // Running out of file descriptors must not spin the shard.
                    tracing::warn!(%error, "{name} endpoint: accept failed");
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if open.get() >= MAX_CONNECTIONS {
                tracing::warn!("{name} endpoint: connection limit reached, closing a new one");
                continue;
            }
            let guard = ConnectionGuard::new(&open);
            let handler = handler.clone();
            glommio::spawn_local(async move {
                if let Err(error) = serve_connection(stream, handler).await {
                    tracing::debug!(%error, "{name} endpoint: connection ended");
                }
                drop(guard);
            })
            .detach();
        }
    }
}

/// Counts an open connection for as long as it lives.
struct ConnectionGuard {
    open: Rc<Cell<usize>>,
}

impl ConnectionGuard {
    fn new(open: &Rc<Cell<usize>>) -> Self {
        open.set(open.get() + 1);
        Self { open: open.clone() }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.set(self.open.get() - 1);
    }
}

/// Serves requests on one connection until the client or a response closes it.
async fn serve_connection<H, Fut>(mut stream: TcpStream, handler: H) -> io::Result<()>
where
    H: Fn(Request) -> Fut,
    Fut: Future<Output = Reply>,
{
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let Some(incoming) = read_request(&mut stream, &mut buffer).await? else {
            return Ok(());
        };
        let response = match &incoming {
            Incoming::Request(request) => {
                let reply = handler(request.clone()).await;
                encode(request, &reply)
            }
            Incoming::Malformed => encode_closing(&Reply::status_only(400)),
            Incoming::TooLarge => encode_closing(&Reply::status_only(431)),
        };
        stream.write_all(&response.bytes).await?;
        stream.flush().await?;
        match incoming {
            Incoming::Request(request) if !response.close => {
                buffer.drain(..request.consumed);
            }
            _ => return stream.close().await,
        }
    }
}

/// Reads until `buffer` holds a whole request head; `None` on a clean end of stream.
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> io::Result<Option<Incoming>> {
    let mut chunk = [0u8; 2048];
    loop {
        if !buffer.is_empty() {
            match parse_request(buffer) {
                Parsed::Incomplete => {}
                Parsed::Done(incoming) => return Ok(Some(incoming)),
            }
        }
        if buffer.len() >= MAX_REQUEST_BYTES {
            return Ok(Some(Incoming::TooLarge));
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incoming {
    Request(Request),
    Malformed,
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    Incomplete,
    Done(Incoming),
}

pub(crate) fn parse_request(buffer: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(buffer) {
        Ok(httparse::Status::Complete(consumed)) => consumed,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Done(Incoming::Malformed),
    };
    let (Some(method), Some(path), Some(version)) = (request.method, request.path, request.version)
    else {
        return Parsed::Done(Incoming::Malformed);
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let connection = header("connection").unwrap_or_default();
    let has_token = |token: &str| connection.split(',').any(|t| t.trim() == token);
    // HTTP/1.1 keeps connections open unless told otherwise; HTTP/1.0 closes unless asked.
    let keep_alive = if version >= 1 {
        !has_token("close")
    } else {
        has_token("keep-alive")
    };
    let has_body = header("transfer-encoding").is_some()
        || header("content-length").is_some_and(|len| len.trim() != "0");
    Parsed::Done(Incoming::Request(Request {
        method: method.to_owned(),
        target: path.to_owned(),
        keep_alive,
        has_body,
        consumed,
    }))
}

/// A response on the wire, and whether the connection closes after it.
pub(crate) struct Response {
    pub(crate) bytes: Vec<u8>,
    pub(crate) close: bool,
}

/// Encodes `reply` to `request`: no body for HEAD, the connection closed unless kept alive
/// (or when the request had a body, which is never read).
pub(crate) fn encode(request: &Request, reply: &Reply) -> Response {
    let close = !request.keep_alive || request.has_body;
    encode_with(reply, close, request.method != "HEAD")
}

fn encode_closing(reply: &Reply) -> Response {
    encode_with(reply, true, true)
}

fn encode_with(reply: &Reply, close: bool, with_body: bool) -> Response {
    let connection = if close { "close" } else { "keep-alive" };
    let Reply {
        status,
        content_type,
        body,
    } = reply;
    let length = body.len();
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {length}\r\nConnection: {connection}\r\n\r\n",
        reason(*status)
    );
    let mut bytes = head.into_bytes();
    if with_body {
        bytes.extend_from_slice(body);
    }
    Response { bytes, close }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse() {
        let Parsed::Done(Incoming::Request(request)) =
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /")
        else {
            panic!("complete head");
        };
        assert_eq!(
            (request.method.as_str(), request.path()),
            ("GET", "/metrics")
        );
        assert!(request.keep_alive && !request.has_body);
        assert_eq!(request.consumed, 34);
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHo"),
            Parsed::Incomplete
        );
        assert_eq!(
            parse_request(b"\x00\x01 nonsense\r\n\r\n"),
            Parsed::Done(Incoming::Malformed)
        );
        let Parsed::Done(Incoming::Request(old)) = parse_request(b"GET / HTTP/1.0\r\n\r\n") else {
            panic!("complete head");
        };
        assert!(!old.keep_alive);
        let Parsed::Done(Incoming::Request(closing)) = parse_request(
            b"POST /metrics HTTP/1.1\r\nConnection: Close\r\nContent-Length: 3\r\n\r\n",
        ) else {
            panic!("complete head");
        };
        assert!(!closing.keep_alive && closing.has_body);
    }

    #[test]
    fn query_parameters_decode() {
        let Parsed::Done(Incoming::Request(request)) =
            parse_request(b"POST /a/b?x=1&cf=t1%2Ct2&flag&sp=a+b HTTP/1.1\r\n\r\n")
        else {
            panic!("complete head");
        };
        assert_eq!(request.path(), "/a/b");
        assert_eq!(request.query("cf").as_deref(), Some("t1,t2"));
        assert_eq!(request.query("flag").as_deref(), Some(""));
        assert_eq!(request.query("sp").as_deref(), Some("a b"));
        assert_eq!(request.query("none"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("ks%3At"), "ks:t");
    }
}
