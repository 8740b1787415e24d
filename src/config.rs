//! Node configuration: the keys, their defaults, and how a file plus command-line overrides
//! become one validated [`Config`].
//!
//! Why it looks like this:
//! - One flat struct of snake_case keys named as ScyllaDB names them, so an operator's
//!   `scylla.yaml` habits carry over and every key can be overridden by a flag of the same name.
//! - `deny_unknown_fields`: a misspelt key is an error at start, never a silently ignored
//!   setting.
//! - Overrides are generic: the key set is read from the struct's serde field list, and a value
//!   is typed by trying it against that one field (typed scalar, then string, then a
//!   comma-separated list). Adding a key to the struct adds its flag; nothing is hand-written
//!   per key, so the flags cannot drift from the file format.
//!
//! Loading, step by step:
//! 1. Parse the file (by extension: `.yaml`/`.yml` or `.toml`) into a generic key → value map.
//! 2. Check each key is known and its value deserializes into that one field, so an error names
//!    the key and its origin (the file, or the flag).
//! 3. Apply the overrides the same way, in order (the last one wins).
//! 4. Deserialize the merged map into [`Config`] and check the cross-key rules in
//!    [`Config::validate`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use serde::de;
use serde::{Deserialize, Serialize};

/// The file loaded when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "conf/tessera.yaml";

/// Errors of loading and validating the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} has extension {extension:?}; expected .yaml, .yml or .toml")]
    UnsupportedFormat { path: PathBuf, extension: String },
    #[error("config file {path} is malformed: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown config key `{key}` in {origin}; known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("invalid value for config key `{key}` in {origin}: {message}")]
    InvalidValue {
        key: String,
        origin: String,
        message: String,
    },
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// When the commitlog is synced to disk relative to acknowledging a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitlogSync {
    /// Acknowledge at once; sync every `commitlog_sync_period_in_ms`.
    Periodic,
    /// Acknowledge only after the write's segment is synced.
    Batch,
}

/// Largest shares an `io_shares_*` key takes.
const MAX_IO_SHARES: u32 = 10_000;

/// Every setting of a node. Field docs are in `conf/tessera.yaml`, which ships every key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub cluster_name: String,
    pub listen_address: String,
    pub rpc_address: String,
    pub broadcast_address: Option<String>,
    pub broadcast_rpc_address: Option<String>,
    pub native_transport_port: u16,
    pub native_shard_aware_transport_port: u16,
    pub storage_port: u16,
    pub prometheus_port: u16,
    pub prometheus_address: Option<String>,
    pub api_port: u16,
    pub api_address: Option<String>,
    pub seeds: Vec<String>,
    pub endpoint_snitch: String,
    pub dc: String,
    pub rack: String,
    pub num_tokens: u32,
    pub data_file_directories: Vec<PathBuf>,
    pub commitlog_directory: PathBuf,
    pub commitlog_sync: CommitlogSync,
    pub commitlog_sync_period_in_ms: u64,
    pub commitlog_segment_size_in_mb: u64,
    pub commitlog_total_space_in_mb: Option<u64>,
    pub smp: Option<u32>,
    pub pin_shards: bool,
    pub transparent_huge_pages: bool,
    pub memory: Option<String>,
    pub memtable_space_fraction: f64,
    pub memtable_total_space_in_mb: Option<u64>,
    pub chunk_cache_size_in_mb: Option<u64>,
    pub io_properties_file: Option<PathBuf>,
    pub io_scheduler: bool,
    pub io_shares_query: Option<u32>,
    pub io_shares_commitlog: Option<u32>,
    pub io_shares_flush: Option<u32>,
    pub io_shares_compaction: Option<u32>,
    pub io_shares_streaming: Option<u32>,
    pub io_shares_maintenance: Option<u32>,
    pub compaction_strategy: String,
    pub compaction_throughput_mb_per_sec: u64,
    pub read_request_timeout_in_ms: u64,
    pub write_request_timeout_in_ms: u64,
    pub range_request_timeout_in_ms: u64,
    pub request_timeout_in_ms: u64,
    pub truncate_request_timeout_in_ms: u64,
    pub native_transport_max_frame_size_in_mb: u32,
    pub max_connections: Option<u32>,
    pub authenticator: String,
    pub authorizer: String,
    pub enable_user_defined_functions: bool,
    pub log_level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cluster_name: "Test Cluster".into(),
            listen_address: "127.0.0.1".into(),
            rpc_address: "127.0.0.1".into(),
            broadcast_address: None,
            broadcast_rpc_address: None,
            native_transport_port: 9042,
            native_shard_aware_transport_port: 19042,
            storage_port: 7000,
            prometheus_port: 9180,
            prometheus_address: None,
            api_port: 10000,
            api_address: None,
            seeds: vec!["127.0.0.1".into()],
            endpoint_snitch: "SimpleSnitch".into(),
            dc: "datacenter1".into(),
            rack: "rack1".into(),
            num_tokens: 256,
            data_file_directories: vec![PathBuf::from("./data/data")],
            commitlog_directory: PathBuf::from("./data/commitlog"),
            commitlog_sync: CommitlogSync::Periodic,
            commitlog_sync_period_in_ms: 10_000,
            commitlog_segment_size_in_mb: 32,
            commitlog_total_space_in_mb: None,
            smp: None,
            pin_shards: true,
            transparent_huge_pages: false,
            memory: None,
            memtable_space_fraction: 0.25,
            memtable_total_space_in_mb: None,
            chunk_cache_size_in_mb: None,
            io_properties_file: None,
            io_scheduler: true,
            io_shares_query: None,
            io_shares_commitlog: None,
            io_shares_flush: None,
            io_shares_compaction: None,
            io_shares_streaming: None,
            io_shares_maintenance: None,
            compaction_strategy: "SizeTieredCompactionStrategy".into(),
            compaction_throughput_mb_per_sec: 0,
            read_request_timeout_in_ms: 5_000,
            write_request_timeout_in_ms: 2_000,
            range_request_timeout_in_ms: 10_000,
            request_timeout_in_ms: 10_000,
            truncate_request_timeout_in_ms: 60_000,
            native_transport_max_frame_size_in_mb: 16,
            max_connections: None,
            authenticator: "AllowAllAuthenticator".into(),
            authorizer: "AllowAllAuthorizer".into(),
            enable_user_defined_functions: false,
            log_level: "info".into(),
        }
    }
}

/// A generic key → value map: the common form of both file formats and the overrides.
type Table = BTreeMap<String, toml::Value>;

impl Config {
    /// Loads `path` (or the defaults when `None`), applies `overrides` (`(key, value)` in order)
    /// and validates the result. Errors name the offending key and where it came from.
    pub fn load(path: Option<&Path>, overrides: &[(String, String)]) -> anyhow::Result<Config> {
        let mut table = match path {
            Some(path) => read_table(path)?,
            None => Table::new(),
        };
        for (key, raw) in overrides {
            let origin = format!("command-line flag --{}", key.replace('_', "-"));
            let value = override_value(key, raw, &origin)?;
            table.insert(key.clone(), value);
        }
        let config = Config::deserialize(toml::Value::Table(table.into_iter().collect()))
            .context("assemble the configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// The names of every key, in declaration order, read from the serde field list.
    pub fn keys() -> &'static [&'static str] {
        let mut fields = None;
        // The capture always ends in an error: it only records the field list.
        let _ = Config::deserialize(FieldNames { out: &mut fields });
        fields.expect("Config is a struct with named fields")
    }

    /// Checks the rules that span keys or ranges serde cannot express.
    /// The `io_shares_*` keys, in `scheduler::IoClass::ALL` order.
    pub fn io_shares(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("io_shares_query", self.io_shares_query),
            ("io_shares_commitlog", self.io_shares_commitlog),
            ("io_shares_flush", self.io_shares_flush),
            ("io_shares_compaction", self.io_shares_compaction),
            ("io_shares_streaming", self.io_shares_streaming),
            ("io_shares_maintenance", self.io_shares_maintenance),
        ]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.data_file_directories.is_empty() {
            return invalid("data_file_directories", "needs at least one directory");
        }
        if self.num_tokens == 0 {
            return invalid("num_tokens", "must be at least 1");
        }
        if self.smp == Some(0) {
            return invalid("smp", "must be at least 1");
        }
        for (key, shares) in self.io_shares() {
            if shares.is_some_and(|s| s == 0 || s > MAX_IO_SHARES) {
                return invalid(key, "must be in 1..=10000");
            }
        }
        if !(self.memtable_space_fraction > 0.0 && self.memtable_space_fraction <= 1.0) {
            return invalid("memtable_space_fraction", "must be in (0, 1]");
        }
        if self.commitlog_sync_period_in_ms == 0 || self.commitlog_segment_size_in_mb == 0 {
            return invalid(
                "commitlog_sync_period_in_ms",
                "commitlog periods and sizes must be positive",
            );
        }
        if self.native_transport_max_frame_size_in_mb == 0 {
            return invalid(
                "native_transport_max_frame_size_in_mb",
                "must be at least 1",
            );
        }
        self.memory_bytes()?;
        Ok(())
    }

    /// The node's memory budget in bytes, if `memory` is set (`4G`, `512M`, `1024K`, bytes).
    pub fn memory_bytes(&self) -> Result<Option<u64>, ConfigError> {
        let Some(text) = self.memory.as_deref() else {
            return Ok(None);
        };
        parse_size_bytes(text)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid {
                key: "memory",
                reason: format!("{text:?} is not a size like 4G, 512M, 1024K or a byte count"),
            })
    }

    /// The number of shards to run: `smp`, or one per available core.
    pub fn effective_smp(&self) -> u32 {
        self.smp.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        })
    }

    /// The address gossip and other nodes use for this node.
    pub fn effective_broadcast_address(&self) -> &str {
        self.broadcast_address
            .as_deref()
            .unwrap_or(&self.listen_address)
    }

    /// The address clients are told to use for this node.
    pub fn effective_broadcast_rpc_address(&self) -> &str {
        self.broadcast_rpc_address
            .as_deref()
            .unwrap_or(&self.rpc_address)
    }

    /// Where the Prometheus endpoint listens (defaults to `listen_address`).
    pub fn effective_prometheus_address(&self) -> &str {
        self.prometheus_address
            .as_deref()
            .unwrap_or(&self.listen_address)
    }

    /// Where the operations API listens (defaults to `listen_address`).
    pub fn effective_api_address(&self) -> &str {
        self.api_address.as_deref().unwrap_or(&self.listen_address)
    }

    pub fn read_request_timeout(&self) -> Duration {
        Duration::from_millis(self.read_request_timeout_in_ms)
    }

    pub fn write_request_timeout(&self) -> Duration {
        Duration::from_millis(self.write_request_timeout_in_ms)
    }

    pub fn range_request_timeout(&self) -> Duration {
        Duration::from_millis(self.range_request_timeout_in_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_in_ms)
    }

    pub fn truncate_request_timeout(&self) -> Duration {
        Duration::from_millis(self.truncate_request_timeout_in_ms)
    }

    pub fn native_transport_max_frame_size_bytes(&self) -> usize {
        usize::try_from(self.native_transport_max_frame_size_in_mb).unwrap_or(usize::MAX) << 20
    }
}

/// Parses `4G`, `512M`, `1024K`, `2T` (binary units, optional trailing `B`/`iB`) or bytes.
fn parse_size_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text
        .strip_suffix("iB")
        .or_else(|| text.strip_suffix('B'))
        .unwrap_or(text);
    let (digits, shift) = match text.char_indices().last()? {
        (i, 'k' | 'K') => (&text[..i], 10),
        (i, 'm' | 'M') => (&text[..i], 20),
        (i, 'g' | 'G') => (&text[..i], 30),
        (i, 't' | 'T') => (&text[..i], 40),
        _ => (text, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// Reads a config file into a table, checking every key and value against [`Config`].
fn read_table(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let syntax = |message: String| ConfigError::Syntax {
        path: path.to_owned(),
        message,
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let raw: BTreeMap<String, Option<toml::Value>> = match extension {
        "yaml" | "yml" if text.lines().all(is_blank_yaml_line) => BTreeMap::new(),
        "yaml" | "yml" => serde_saphyr::from_str(&text).map_err(|e| syntax(e.to_string()))?,
        "toml" => toml::from_str(&text).map_err(|e| syntax(e.to_string()))?,
        _ => {
            return Err(ConfigError::UnsupportedFormat {
                path: path.to_owned(),
                extension: extension.to_owned(),
            })
        }
    };
    let origin = format!("config file {}", path.display());
    let mut table = Table::new();
    // A YAML null (`key:` or `key: ~`) means "use the default", as if the key were absent.
    for (key, value) in raw.into_iter().filter_map(|(k, v)| Some((k, v?))) {
        check_key_value(&key, &value, &origin)?;
        table.insert(key, value);
    }
    Ok(table)
}

fn is_blank_yaml_line(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#') || line == "---"
}

/// Checks `key` is a config key and `value` deserializes into that field alone (every other
/// field takes its default), so the error can name the key.
fn check_key_value(key: &str, value: &toml::Value, origin: &str) -> Result<(), ConfigError> {
    check_known_key(key, origin)?;
    try_field(key, value.clone()).map_err(|message| ConfigError::InvalidValue {
        key: key.to_owned(),
        origin: origin.to_owned(),
        message,
    })
}

fn check_known_key(key: &str, origin: &str) -> Result<(), ConfigError> {
    if Config::keys().contains(&key) {
        return Ok(());
    }
    Err(ConfigError::UnknownKey {
        key: key.to_owned(),
        origin: origin.to_owned(),
        known: Config::keys().join(", "),
    })
}

fn try_field(key: &str, value: toml::Value) -> Result<(), String> {
    let mut single = toml::Table::new();
    single.insert(key.to_owned(), value);
    Config::deserialize(toml::Value::Table(single))
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

/// Types a command-line value by trying, against its field: the value read as a YAML scalar
/// or flow list, the raw string, then a comma-separated list of either.
fn override_value(key: &str, raw: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    check_known_key(key, origin)?;
    let list = toml::Value::Array(
        raw.split(',')
            .map(|item| scalar_value(item.trim()))
            .collect(),
    );
    let candidates = [
        yaml_value(raw),
        Some(toml::Value::String(raw.to_owned())),
        Some(list),
    ];
    let mut first_error = None;
    for candidate in candidates.into_iter().flatten() {
        match try_field(key, candidate.clone()) {
            Ok(()) => return Ok(candidate),
            Err(message) => {
                first_error.get_or_insert(message);
            }
        }
    }
    Err(ConfigError::InvalidValue {
        key: key.to_owned(),
        origin: origin.to_owned(),
        message: format!("{raw:?}: {}", first_error.unwrap_or_default()),
    })
}

fn yaml_value(raw: &str) -> Option<toml::Value> {
    serde_saphyr::from_str::<Option<toml::Value>>(raw)
        .ok()
        .flatten()
}

fn scalar_value(raw: &str) -> toml::Value {
    yaml_value(raw)
        .filter(|v| !v.is_array() && !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// A deserializer that only records the field list a derived `Deserialize` asks for.
struct FieldNames<'a> {
    out: &'a mut Option<&'static [&'static str]>,
}

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs have field names"))
    }

    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.out = Some(fields);
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The command line: `tessera [--config FILE] [COMMAND] [--<config-key> VALUE]...`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tessera",
    version,
    about = "A shard-per-core wide-column database server speaking CQL"
)]
pub struct Cli {
    /// Configuration file (.yaml, .yml or .toml); default conf/tessera.yaml if it exists.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// `(key, value)` overrides taken from `--key-name VALUE` flags, in command-line order.
    #[arg(skip)]
    pub overrides: Vec<(String, String)>,
}

/// What to do; no command runs the server.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Run,
    /// Load and validate the configuration, then exit.
    CheckConfig,
    /// Print the effective configuration as TOML, then exit.
    PrintConfig,
    /// Measure the disk under each of `--data-file-directories` and write the IO scheduler's
    /// disk model (io_properties.yaml); point `io_properties_file` at it.
    IoTune {
        /// Where to write the disk model.
        #[arg(long, value_name = "FILE", default_value = "conf/io_properties.yaml")]
        output: PathBuf,
        /// Seconds per measurement and concurrency level (about ten of them run).
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = parse_duration_secs)]
        duration: f64,
    },
}

/// A positive, finite number of seconds.
fn parse_duration_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err(format!("{text:?} is not a number of seconds in (0, 3600]")),
    }
}

impl Cli {
    /// Parses the process's arguments; prints help or an error and exits on failure.
    pub fn parse_or_exit() -> Cli {
        Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (program name first). Flags named after a config key become overrides;
    /// everything else is parsed by clap, so an unknown flag is a clap error naming it.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let (rest, overrides) = split_overrides(args.into_iter().map(Into::into))?;
        let matches = command_with_keys().try_get_matches_from(rest)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.overrides = overrides;
        Ok(cli)
    }

    /// Loads the configuration the command line names: `--config`, else
    /// [`DEFAULT_CONFIG_PATH`] if it exists, else the defaults; then the overrides.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let default = Path::new(DEFAULT_CONFIG_PATH);
        let path = match &self.config {
            Some(path) => Some(path.as_path()),
            None => default.exists().then_some(default),
        };
        Config::load(path, &self.overrides)
    }
}

/// The clap command with every config key listed in the help text.
fn command_with_keys() -> clap::Command {
    let defaults = toml::Table::try_from(Config::default()).expect("Config serializes to TOML");
    let mut help = String::from(
        "Config overrides (any key of the config file, `_` written `-`; lists comma-separated):\n",
    );
    for key in Config::keys() {
        let default = defaults
            .get(*key)
            .map_or("unset".to_owned(), ToString::to_string);
        help.push_str(&format!(
            "  --{:<40} default {default}\n",
            key.replace('_', "-")
        ));
    }
    Cli::command().after_help(help)
}

type SplitArgs = (Vec<OsString>, Vec<(String, String)>);

/// Pulls `--key-name VALUE` and `--key-name=VALUE` pairs for config keys out of `args`.
fn split_overrides(args: impl Iterator<Item = OsString>) -> Result<SplitArgs, clap::Error> {
    let mut rest = Vec::new();
    let mut overrides = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let Some((key, inline_value)) = arg.to_str().and_then(override_key) else {
            rest.push(arg);
            continue;
        };
        let value = match inline_value {
            Some(value) => value,
            None => match args.next().map(OsString::into_string) {
                Some(Ok(value)) => value,
                _ => {
                    let message = format!("flag --{} needs a UTF-8 value", key.replace('_', "-"));
                    return Err(Cli::command().error(clap::error::ErrorKind::InvalidValue, message));
                }
            },
        };
        overrides.push((key, value));
    }
    Ok((rest, overrides))
}

/// `--key-name[=value]` → `("key_name", value)` when `key_name` is a config key.
fn override_key(arg: &str) -> Option<(String, Option<String>)> {
    let flag = arg.strip_prefix("--")?;
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (flag, None),
    };
    let key = name.replace('-', "_");
    Config::keys()
        .contains(&key.as_str())
        .then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf")
            .join(name)
    }

    fn write_temp(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write temp config");
        (dir, path)
    }

    fn overrides(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_files_equal_defaults() {
        for name in ["tessera.yaml", "tessera.toml"] {
            let config = Config::load(Some(&shipped(name)), &[]).expect(name);
            assert_eq!(
                config,
                Config::default(),
                "{name} drifted from Config::default()"
            );
        }
    }

    #[test]
    fn shipped_files_mention_every_key() {
        for name in ["tessera.yaml", "tessera.toml"] {
            let text = std::fs::read_to_string(shipped(name)).expect(name);
            for key in Config::keys() {
                assert!(
                    text.contains(&format!("{key}:")) || text.contains(&format!("{key} =")),
                    "{name} lacks {key}"
                );
            }
        }
    }

    #[test]
    fn keys_come_from_the_struct() {
        let keys = Config::keys();
        assert_eq!(keys.first(), Some(&"cluster_name"));
        assert!(keys.contains(&"smp") && keys.contains(&"data_file_directories"));
        let serialized = toml::Table::try_from(Config::default()).expect("serializes");
        assert!(serialized.keys().all(|k| keys.contains(&k.as_str())));
    }

    #[test]
    fn no_file_gives_defaults() {
        assert_eq!(
            Config::load(None, &[]).expect("defaults"),
            Config::default()
        );
    }

    #[test]
    fn overrides_are_typed_by_field() {
        let config = Config::load(
            None,
            &overrides(&[
                ("seeds", "127.0.0.1,127.0.0.2"),
                ("data_file_directories", "/a"),
                ("native_transport_port", "9043"),
                ("cluster_name", "123"),
                ("pin_shards", "false"),
                ("transparent_huge_pages", "true"),
                ("smp", "2"),
                ("memory", "4G"),
                ("commitlog_sync", "batch"),
                ("memtable_space_fraction", "0.5"),
                ("broadcast_address", "10.0.0.1"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(config.seeds, ["127.0.0.1", "127.0.0.2"]);
        assert_eq!(config.data_file_directories, [PathBuf::from("/a")]);
        assert_eq!(config.native_transport_port, 9043);
        assert_eq!(config.cluster_name, "123");
        assert!(!config.pin_shards);
        assert!(config.transparent_huge_pages);
        assert_eq!(config.smp, Some(2));
        assert_eq!(config.memory_bytes().expect("valid"), Some(4 << 30));
        assert_eq!(config.commitlog_sync, CommitlogSync::Batch);
        assert_eq!(config.memtable_space_fraction, 0.5);
        assert_eq!(config.effective_broadcast_address(), "10.0.0.1");
    }

    #[test]
    fn io_scheduler_keys() {
        let config = Config::load(
            None,
            &overrides(&[("io_scheduler", "false"), ("io_shares_compaction", "50")]),
        )
        .expect("valid");
        assert!(!config.io_scheduler);
        assert_eq!(config.io_shares()[3], ("io_shares_compaction", Some(50)));
        assert_eq!(config.io_shares()[0], ("io_shares_query", None));
        let error =
            Config::load(None, &overrides(&[("io_shares_query", "0")])).expect_err("zero shares");
        assert!(error.to_string().contains("io_shares_query"), "{error}");
    }

    #[test]
    fn overrides_beat_the_file() {
        let (_dir, path) = write_temp("n.yaml", "num_tokens: 16\nseeds: [a, b]\n");
        let config = Config::load(Some(&path), &overrides(&[("num_tokens", "8")])).expect("valid");
        assert_eq!(config.num_tokens, 8);
        assert_eq!(config.seeds, ["a", "b"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let (_dir, path) = write_temp("bad.yaml", "cluster_name: x\nnum_tokenz: 3\n");
        let error = Config::load(Some(&path), &[])
            .expect_err("unknown key")
            .to_string();
        assert!(
            error.contains("num_tokenz") && error.contains("bad.yaml"),
            "{error}"
        );
        let (_dir, path) = write_temp("bad.toml", "num_tokenz = 3\n");
        let error = Config::load(Some(&path), &[])
            .expect_err("unknown key")
            .to_string();
        assert!(
            error.contains("num_tokenz") && error.contains("bad.toml"),
            "{error}"
        );
        let error = Config::load(None, &overrides(&[("bogus", "1")])).expect_err("unknown");
        assert!(error.to_string().contains("bogus"), "{error}");
    }

    #[test]
    fn malformed_values_are_named() {
        let (_dir, path) = write_temp("bad.yaml", "native_transport_port: abc\n");
        let error = Config::load(Some(&path), &[])
            .expect_err("bad port")
            .to_string();
        assert!(
            error.contains("native_transport_port") && error.contains("bad.yaml"),
            "{error}"
        );
        let (_dir, path) = write_temp("bad.toml", "commitlog_sync = \"sometimes\"\n");
        let error = Config::load(Some(&path), &[])
            .expect_err("bad enum")
            .to_string();
        assert!(
            error.contains("commitlog_sync") && error.contains("bad.toml"),
            "{error}"
        );
        let error =
            Config::load(None, &overrides(&[("storage_port", "70000")])).expect_err("range");
        assert!(error.to_string().contains("--storage-port"), "{error}");
        let error = Config::load(None, &overrides(&[("memory", "lots")])).expect_err("size");
        assert!(error.to_string().contains("memory"), "{error}");
    }

    #[test]
    fn syntax_errors_and_formats() {
        let (_dir, path) = write_temp("broken.toml", "num_tokens = = 3\n");
        let error = Config::load(Some(&path), &[])
            .expect_err("syntax")
            .to_string();
        assert!(error.contains("broken.toml"), "{error}");
        let (_dir, path) = write_temp("conf.ini", "num_tokens=3\n");
        assert!(Config::load(Some(&path), &[]).is_err());
        let (_dir, path) = write_temp("empty.yaml", "# nothing\n");
        assert_eq!(
            Config::load(Some(&path), &[]).expect("empty"),
            Config::default()
        );
        let (_dir, path) = write_temp("null.yml", "smp:\nmemory: ~\n");
        assert_eq!(
            Config::load(Some(&path), &[]).expect("nulls"),
            Config::default()
        );
    }

    #[test]
    fn validation_rejects_nonsense() {
        for (key, value) in [
            ("num_tokens", "0"),
            ("smp", "0"),
            ("memtable_space_fraction", "1.5"),
        ] {
            let error = Config::load(None, &overrides(&[(key, value)])).expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_size_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_size_bytes("1KiB"), Some(1024));
        assert_eq!(parse_size_bytes("100"), Some(100));
        assert_eq!(parse_size_bytes("G"), None);
        assert_eq!(parse_size_bytes("99999999999T"), None);
    }

    #[test]
    fn cli_splits_overrides_from_clap_flags() {
        let cli = Cli::try_parse_args([
            "tessera",
            "--config",
            "x.toml",
            "--seeds",
            "127.0.0.1,127.0.0.2",
            "check-config",
            "--native-transport-port=9043",
        ])
        .expect("valid command line");
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        assert_eq!(cli.command, Some(Command::CheckConfig));
        assert_eq!(
            cli.overrides,
            overrides(&[
                ("seeds", "127.0.0.1,127.0.0.2"),
                ("native_transport_port", "9043")
            ])
        );
        let bare = Cli::try_parse_args(["tessera"]).expect("no args");
        assert_eq!((bare.config, bare.command), (None, None));
    }

    #[test]
    fn io_tune_takes_data_directories_as_an_override() {
        let cli = Cli::try_parse_args([
            "tessera",
            "io-tune",
            "--data-file-directories",
            "/mnt/a",
            "--output",
            "out.yaml",
            "--duration",
            "0.5",
        ])
        .expect("valid command line");
        assert_eq!(
            cli.command,
            Some(Command::IoTune {
                output: PathBuf::from("out.yaml"),
                duration: 0.5
            })
        );
        assert_eq!(
            cli.overrides,
            overrides(&[("data_file_directories", "/mnt/a")])
        );
        let error = Cli::try_parse_args(["tessera", "io-tune", "--duration", "0"])
            .expect_err("negative duration");
        assert!(error.to_string().contains("--duration"), "{error}");
    }

    #[test]
    fn cli_rejects_unknown_and_valueless_flags() {
        let error = Cli::try_parse_args(["tessera", "--no-such-key", "1"]).expect_err("unknown");
        assert!(error.to_string().contains("--no-such-key"), "{error}");
        let error = Cli::try_parse_args(["tessera", "--smp"]).expect_err("no value");
        assert!(error.to_string().contains("--smp"), "{error}");
    }

    #[test]
    fn help_lists_keys() {
        let help = command_with_keys().render_long_help().to_string();
        for key in Config::keys() {
            assert!(help.contains(&key.replace('_', "-")), "help lacks {key}");
        }
    }
}
