//! Starts the real `tessera` binary on loopback with free ports and a
//! temporary data directory, and connects real drivers to it.
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

/// One running server process; killed when dropped.
pub struct TestNode {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub cql_port: u16,
    pub shard_aware_port: u16,
    pub prometheus_port: u16,
    pub api_port: u16,
    pub smp: usize,
    extra_args: Vec<String>,
    /// Log lines containing one of these are expected (a test that damages files on
    /// purpose), not problems.
    expected_problems: Vec<String>,
}

/// A port reserved for one test node.
///
/// Tessera listens with SO_REUSEPORT, so two nodes given the same port would
/// silently share it. A reservation is a socket bound (not listening) to the
/// port with SO_REUSEPORT: the node, which sets SO_REUSEPORT too, can still
/// bind it, while any other test looking for a free port (a plain bind)
/// fails on it for as long as the reservation lives, restarts included.
pub struct PortReservation {
    pub port: u16,
    _socket: socket2::Socket,
}

/// Reserves a free port below the kernel's ephemeral range.
pub fn reserve_port() -> PortReservation {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const BASE: u32 = 10_000;
    const SPAN: u32 = 20_000;
    let start = std::process::id().wrapping_mul(64) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(BASE + (start + n) % SPAN).expect("ports stay below 30000");
        // A plain bind first: it fails if anyone (a reservation included) holds the port.
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_reuse_port(true).expect("SO_REUSEPORT");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if socket.bind(&addr.into()).is_ok() {
            return PortReservation {
                port,
                _socket: socket,
            };
        }
    }
}

/// A free port, reserved until the test process ends.
pub fn free_port() -> u16 {
    let reservation = reserve_port();
    let port = reservation.port;
    std::mem::forget(reservation);
    port
}

impl TestNode {
    /// Starts a node with two shards.
    pub fn start() -> TestNode {
        Self::start_with(2, &[])
    }

    /// Starts a node with `smp` shards and extra command-line flags.
    pub fn start_with(smp: usize, extra_args: &[&str]) -> TestNode {
        let mut node = TestNode {
            child: None,
            dir: tempfile::tempdir().expect("temporary directory"),
            cql_port: free_port(),
            shard_aware_port: free_port(),
            prometheus_port: free_port(),
            api_port: free_port(),
            smp,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            expected_problems: Vec::new(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .arg("--smp")
            .arg(self.smp.to_string())
            .arg("--native-transport-port")
            .arg(self.cql_port.to_string())
            .arg("--native-shard-aware-transport-port")
            .arg(self.shard_aware_port.to_string())
            .arg("--prometheus-port")
            .arg(self.prometheus_port.to_string())
            .arg("--api-port")
            .arg(self.api_port.to_string())
            .arg("--data-file-directories")
            .arg(data.join("data"))
            .arg("--commitlog-directory")
            .arg(data.join("commitlog"))
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        self.child = Some(command.spawn().expect("start tessera"));
        self.wait_listening();
    }

    /// Where the server's output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("tessera.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addrs = [
            self.cql_port,
            self.shard_aware_port,
            self.prometheus_port,
            self.api_port,
        ];
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tessera exited early with {status}:\n{}", self.log());
            }
            if addrs
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tessera did not start listening in time:\n{}", self.log());
    }

    /// The plain CQL address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.cql_port))
    }

    /// A driver session (shard-aware when the server offers it).
    pub async fn session(&self) -> Session {
        SessionBuilder::new()
            .known_node_addr(self.addr())
            .build()
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log()))
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(&child, libc_sigterm());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    // A signal (a crash at exit, say) has no exit code: say which.
                    eprintln!("tessera exited on SIGTERM with {status}");
                }
                // As after kill9: sockets may outlive the process a moment.
                self.wait_ports_closed();
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("tessera did not stop on SIGTERM:\n{}", self.log());
    }

    /// Stops (SIGTERM) and starts the server again on the same data and ports.
    pub fn restart(&mut self) {
        assert_eq!(self.stop(), Some(0), "clean exit:\n{}", self.log());
        self.spawn();
    }

    /// Kills the server with SIGKILL (no chance to sync or clean up) and
    /// waits for it to die: a crash, as far as the data on disk can tell.
    ///
    /// The kernel tears a dead process's io_uring down in the background,
    /// and the listening sockets it holds may accept connections for a
    /// moment after the process is reaped; this also waits for them to
    /// close, so that a relaunched server is not mistaken for listening.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.wait_ports_closed();
    }

    /// Waits until nothing accepts on the server's ports any more.
    fn wait_ports_closed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ports = [
            self.cql_port,
            self.shard_aware_port,
            self.prometheus_port,
            self.api_port,
        ];
        while ports
            .iter()
            .any(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
        {
            assert!(
                Instant::now() < deadline,
                "the dead server's sockets stay open"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data and ports after
    /// [`TestNode::kill9`] (or [`TestNode::stop`]).
    pub fn relaunch(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Lines of the log at WARN or ERROR level, but for expected ones.
    pub fn log_problems(&self) -> Vec<String> {
        BufReader::new(self.log().as_bytes())
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"))
            .filter(|l| {
                !self
                    .expected_problems
                    .iter()
                    .any(|e| l.contains(e.as_str()))
            })
            .collect()
    }

    /// Declares log lines containing `text` expected (not a test failure).
    pub fn expect_log_problem(&mut self, text: &str) {
        self.expected_problems.push(text.to_owned());
    }

    /// Sends an HTTP request to the REST API; returns the status and the body.
    pub fn api(&self, method: &str, target: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.api_port)).expect("connect API");
        let request =
            format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .expect("send API request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("API response");
        let (head, body) = response.split_once("\r\n\r\n").expect("http response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("status line: {head}"));
        (status, body.to_owned())
    }

    /// The data directory (keyspace directories under it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("data")
    }

    /// The commitlog directory.
    pub fn commitlog_dir(&self) -> PathBuf {
        self.dir.path().join("data").join("commitlog")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A test fails on an unexpected warning or error in the server log.
        let problems = self.log_problems();
        if !std::thread::panicking() && !problems.is_empty() {
            panic!(
                "unexpected problems in the server log:\n{}",
                problems.join("\n")
            );
        }
    }
}

fn libc_sigterm() -> &'static str {
    "-TERM"
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status();
}

/// A fresh keyspace name for one test.
pub fn unique_keyspace(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Creates a fresh SimpleStrategy keyspace (replication factor 1) for one test.
pub async fn create_keyspace(session: &Session, prefix: &str) -> String {
    let ks = unique_keyspace(prefix);
    session
        .query_unpaged(
            format!(
                "CREATE KEYSPACE {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            (),
        )
        .await
        .expect("create keyspace");
    ks
}
