//! The disk model: what the disk can do, as `tessera io-tune` measured it,
//! and the cost of one request under it.
//!
//! The cost of a request is the disk time it occupies, in nanoseconds,
//! when the disk runs at full capacity:
//!
//! ```text
//! cost(read,  bytes) = max(1 s / read_iops,  bytes / read_bandwidth)
//! cost(write, bytes) = max(1 s / write_iops, bytes / write_bandwidth)
//! cost(sync)         = 1 s / write_iops
//! ```
//!
//! Small requests are bound by the IOPS the disk sustains, large ones by
//! its bandwidth; the larger of the two is the request's share of a second
//! of disk capacity. A disk that is never charged more than one second of
//! cost per second keeps its own queue short.
//!
//! The file (`io_properties.yaml`), one entry per disk:
//!
//! ```yaml
//! disks:
//!   - mountpoint: /var/lib/tessera
//!     read_iops: 95000            # random 4 KiB reads per second
//!     read_bandwidth: 545000000   # sequential read bytes per second
//!     write_iops: 85000
//!     write_bandwidth: 510000000
//! ```
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a request does to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoKind {
    Read,
    Write,
    /// `fdatasync` (and other metadata-only operations).
    Sync,
}

/// Nanoseconds per second.
const NANOS_PER_SECOND: f64 = 1e9;

/// One disk's measured capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskProperties {
    /// The mount point (or directory) the measurements were taken under.
    pub mountpoint: PathBuf,
    /// Random 4 KiB reads per second at saturating concurrency.
    pub read_iops: u64,
    /// Sequential read bandwidth, bytes per second.
    pub read_bandwidth: u64,
    /// Random 4 KiB writes per second at saturating concurrency.
    pub write_iops: u64,
    /// Sequential write bandwidth, bytes per second.
    pub write_bandwidth: u64,
}

impl DiskProperties {
    /// A deliberately modest model, used when no `io_properties.yaml` is
    /// given: a network-attached SSD's order of magnitude. On a faster disk
    /// it leaves capacity unused; on a slower one the disk queues a little.
    pub fn conservative_default() -> Self {
        DiskProperties {
            mountpoint: PathBuf::from("/"),
            read_iops: 20_000,
            read_bandwidth: 400 << 20,
            write_iops: 20_000,
            write_bandwidth: 300 << 20,
        }
    }

    /// The disk time, in nanoseconds, a request of `kind` and `bytes` costs.
    pub fn cost_ns(&self, kind: IoKind, bytes: u64) -> u64 {
        let (iops, bandwidth) = match kind {
            IoKind::Read => (self.read_iops, self.read_bandwidth),
            IoKind::Write => (self.write_iops, self.write_bandwidth),
            IoKind::Sync => (self.write_iops, u64::MAX),
        };
        let per_op = NANOS_PER_SECOND / iops.max(1) as f64;
        let per_bytes = bytes as f64 * NANOS_PER_SECOND / bandwidth.max(1) as f64;
        // At least one nanosecond, so every request is charged something.
        (per_op.max(per_bytes).ceil() as u64).max(1)
    }

    fn validate(&self) -> Result<(), String> {
        let fields = [
            ("read_iops", self.read_iops),
            ("read_bandwidth", self.read_bandwidth),
            ("write_iops", self.write_iops),
            ("write_bandwidth", self.write_bandwidth),
        ];
        match fields.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(format!(
                "disk {}: {name} must be positive",
                self.mountpoint.display()
            )),
            None => Ok(()),
        }
    }
}

/// The contents of an `io_properties.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoProperties {
    pub disks: Vec<DiskProperties>,
}

/// Why an `io_properties.yaml` could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoPropertiesError {
    #[error("cannot read IO properties file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write IO properties file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("IO properties file {path} is malformed: {message}")]
    Malformed { path: PathBuf, message: String },
}

impl IoProperties {
    /// Parses the YAML text of an `io_properties.yaml`; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<IoProperties, IoPropertiesError> {
        let malformed = |message: String| IoPropertiesError::Malformed {
            path: path.to_owned(),
            message,
        };
        let properties: IoProperties =
            serde_saphyr::from_str(text).map_err(|error| malformed(error.to_string()))?;
        if properties.disks.is_empty() {
            return Err(malformed("lists no disks".to_owned()));
        }
        for disk in &properties.disks {
            disk.validate().map_err(malformed)?;
        }
        Ok(properties)
    }

    /// Reads and parses `path` (blocking: call it before the shards start).
    pub fn load(path: &Path) -> Result<IoProperties, IoPropertiesError> {
        let text = std::fs::read_to_string(path).map_err(|source| IoPropertiesError::Read {
            path: path.to_owned(),
            source,
        })?;
        IoProperties::parse(&text, path)
    }

    /// The file's YAML text.
    pub fn to_yaml(&self) -> String {
        let mut text = String::from(
            "# Written by `tessera io-tune`: the disk model of the IO scheduler.\ndisks:\n",
        );
        for disk in &self.disks {
            text.push_str(&format!(
                "  - mountpoint: {}\n    read_iops: {}\n    read_bandwidth: {}\n    \
                 write_iops: {}\n    write_bandwidth: {}\n",
                yaml_string(&disk.mountpoint.to_string_lossy()),
                disk.read_iops,
                disk.read_bandwidth,
                disk.write_iops,
                disk.write_bandwidth
            ));
        }
        text
    }

    /// Writes the file (blocking; io-tune runs before any shard).
    pub fn write(&self, path: &Path) -> Result<(), IoPropertiesError> {
        std::fs::write(path, self.to_yaml()).map_err(|source| IoPropertiesError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// The disk whose mount point is the longest prefix of `dir` (the
    /// first disk when none matches: a one-disk file measured elsewhere).
    pub fn disk_for(&self, dir: &Path) -> Option<&DiskProperties> {
        self.disks
            .iter()
            .filter(|disk| dir.starts_with(&disk.mountpoint))
            .max_by_key(|disk| disk.mountpoint.as_os_str().len())
            .or_else(|| self.disks.first())
    }
}

/// A YAML double-quoted string (paths may hold `:` or `#`).
fn yaml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for ch in text.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            ch if ch.is_control() => quoted.push_str(&format!("\\u{:04x}", ch as u32)),
            ch => quoted.push(ch),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn disk(mountpoint: &str) -> DiskProperties {
        DiskProperties {
            mountpoint: PathBuf::from(mountpoint),
            read_iops: 100_000,
            read_bandwidth: 1_000_000_000,
            write_iops: 50_000,
            write_bandwidth: 500_000_000,
        }
    }

    #[test]
    fn costs_are_iops_or_bandwidth_bound() {
        let model = disk("/");
        // 4 KiB read: 10 µs by IOPS, 4.1 µs by bandwidth.
        assert_eq!(model.cost_ns(IoKind::Read, 4096), 10_000);
        // 128 KiB read: 131 µs by bandwidth.
        assert_eq!(model.cost_ns(IoKind::Read, 131_072), 131_072);
        assert_eq!(model.cost_ns(IoKind::Write, 4096), 20_000);
        assert_eq!(model.cost_ns(IoKind::Write, 1_000_000), 2_000_000);
        assert_eq!(model.cost_ns(IoKind::Sync, 0), 20_000);
    }

    #[test]
    fn parses_the_documented_format() {
        let text = "disks:\n  - mountpoint: /var/lib/tessera\n    read_iops: 95000\n    \
                    read_bandwidth: 545000000\n    write_iops: 85000\n    write_bandwidth: 510000000\n";
        let properties = IoProperties::parse(text, Path::new("x.yaml")).expect("valid");
        assert_eq!(properties.disks.len(), 1);
        assert_eq!(properties.disks[0].read_iops, 95_000);
        assert_eq!(properties.disks[0].write_bandwidth, 510_000_000);
    }

    #[test]
    fn rejects_bad_files_with_their_name() {
        for text in [
            "disks: []\n",
            "disks:\n  - mountpoint: /\n    read_iops: 0\n    read_bandwidth: 1\n    write_iops: 1\n    write_bandwidth: 1\n",
            "disks:\n  - mountpoint: /\n    read_iops: 1\n",
            "disks:\n  - mountpoint: /\n    read_iops: 1\n    read_bandwidth: 1\n    write_iops: 1\n    write_bandwidth: 1\n    extra: 2\n",
            "not yaml: [",
        ] {
            let error = IoProperties::parse(text, Path::new("bad.yaml")).expect_err(text);
            assert!(error.to_string().contains("bad.yaml"), "{error}");
        }
    }

    #[test]
    fn picks_the_disk_by_longest_mountpoint() {
        let properties = IoProperties {
            disks: vec![disk("/"), disk("/data"), disk("/data/fast")],
        };
        let pick = |dir: &str| {
            properties
                .disk_for(Path::new(dir))
                .map(|d| d.mountpoint.clone())
        };
        assert_eq!(pick("/data/fast/x"), Some(PathBuf::from("/data/fast")));
        assert_eq!(pick("/data/slow"), Some(PathBuf::from("/data")));
        assert_eq!(pick("/home"), Some(PathBuf::from("/")));
    }

    proptest! {
        #[test]
        fn written_files_read_back(
            mountpoint in "/[a-z0-9 :#\"\\\\_.-]{0,30}",
            values in prop::array::uniform4(1u64..u64::from(u32::MAX) * 16),
        ) {
            let properties = IoProperties {
                disks: vec![DiskProperties {
                    mountpoint: PathBuf::from(&mountpoint),
                    read_iops: values[0],
                    read_bandwidth: values[1],
                    write_iops: values[2],
                    write_bandwidth: values[3],
                }],
            };
            let text = properties.to_yaml();
            let parsed = IoProperties::parse(&text, Path::new("t.yaml")).expect("round trip");
            prop_assert_eq!(parsed, properties);
        }
    }
}
