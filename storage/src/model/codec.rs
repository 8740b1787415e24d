//! The binary form of a [`Mutation`], as the commitlog stores it.
//!
//! A mutation is written to the commitlog before it reaches a memtable and
//! read back at start, possibly by a newer build: the encoding is explicit
//! (every integer big-endian, every variable-length field length-prefixed)
//! and starts with a version byte, so a future format can be told apart
//! and the decoder never trusts a length it has not checked against the
//! bytes it holds. Decoding garbage fails with a [`CodecError`]; it never
//! panics and never allocates more than the input's size.
//!
//! Format 1:
//!
//! ```text
//! mutation   version u8 = 1 | table uuid (16) | token i64 | key bytes |
//!            flags u8 (1: partition deletion, 2: static row) |
//!            [tombstone] [row] | rows u32 × (clustering bytes, row) |
//!            range tombstones u32 × (bound, bound, tombstone)
//! bytes      length u32 | that many bytes
//! tombstone  timestamp i64 | deletion time i32
//! expiry     present u8 (0/1) [ttl i32 | expires at i32]
//! bound      tag u8 (0: unbounded, 1: exclusive, 2: inclusive) [prefix bytes]
//! row        flags u8 (1: marker, 2: deletion) | [marker ts i64, expiry] |
//!            [tombstone] | cells u32 × cell | complex deletions u32 ×
//!            (column u32, tombstone)
//! cell       column u32 | path present u8 [path bytes] | timestamp i64 |
//!            kind u8 (0: live [expiry, value bytes], 1: dead [deletion time i32])
//! ```
//!
//! A commitlog entry is a [`LogEntry`]: a mutation as above (its first byte
//! is the mutation format version), or a table truncation, `0x81 | table
//! uuid (16)`, replayed in log order so that writes logged before it stay
//! truncated.
use bytes::Bytes;

use super::cell::{Cell, CellKey, CellKind, Expiry, Row, RowMarker, Tombstone};
use super::keys::{ClusteringBound, ClusteringRange, DecoratedKey};
use super::mutation::{Mutation, RangeTombstone};

/// The format version this build writes (and the only one it reads).
pub const MUTATION_FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded as a mutation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("serialized mutation truncated: {field} needs {needed} bytes at offset {offset}, {available} left")]
    Truncated {
        field: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// The version byte names a format this build does not know.
    #[error("serialized mutation has format version {version}, this build reads {supported}")]
    UnsupportedVersion { version: u8, supported: u8 },
    /// A tag or flag byte holds a value the format does not define.
    #[error("serialized mutation has invalid {field} tag {tag} at offset {offset}")]
    InvalidTag {
        field: &'static str,
        tag: u8,
        offset: usize,
    },
    /// Bytes remain after a complete mutation.
    #[error("serialized mutation has {count} trailing bytes")]
    TrailingBytes { count: usize },
}

/// First byte of a truncation entry (outside the mutation versions).
const TRUNCATE_TAG: u8 = 0x81;

/// One commitlog entry: what a shard did to its memtables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A write (boxed: far larger than a truncation).
    Mutation(Box<Mutation>),
    /// Every earlier write of the table was truncated.
    Truncate { table: super::TableId },
}

impl LogEntry {
    /// The entry's binary form.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            LogEntry::Mutation(m) => m.encode(),
            LogEntry::Truncate { table } => {
                let mut out = Vec::with_capacity(17);
                out.push(TRUNCATE_TAG);
                out.extend_from_slice(table.as_bytes());
                out
            }
        }
    }

    /// Reads an entry written by [`LogEntry::encode`].
    pub fn decode(bytes: &[u8]) -> Result<LogEntry, CodecError> {
        if bytes.first() != Some(&TRUNCATE_TAG) {
            return Mutation::decode(bytes).map(|m| LogEntry::Mutation(Box::new(m)));
        }
        let mut r = Reader { bytes, offset: 1 };
        let table = uuid::Uuid::from_bytes(r.array::<16>("table id")?);
        match r.bytes.len() - r.offset {
            0 => Ok(LogEntry::Truncate { table }),
            count => Err(CodecError::TrailingBytes { count }),
        }
    }
}

impl Mutation {
    /// The mutation's binary form (format [`MUTATION_FORMAT_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes());
        out.push(MUTATION_FORMAT_VERSION);
        out.extend_from_slice(self.table.as_bytes());
        out.extend_from_slice(&self.key.token.to_be_bytes());
        put_bytes(&mut out, &self.key.key);
        let flags = u8::from(self.partition_deletion.is_some())
            | (u8::from(self.static_row.is_some()) << 1);
        out.push(flags);
        if let Some(tombstone) = &self.partition_deletion {
            put_tombstone(&mut out, tombstone);
        }
        if let Some(row) = &self.static_row {
            put_row(&mut out, row);
        }
        put_len(&mut out, self.rows.len());
        for (clustering, row) in &self.rows {
            put_bytes(&mut out, clustering);
            put_row(&mut out, row);
        }
        put_len(&mut out, self.range_tombstones.len());
        for rt in &self.range_tombstones {
            put_bound(&mut out, rt.range.start.as_ref());
            put_bound(&mut out, rt.range.end.as_ref());
            put_tombstone(&mut out, &rt.tombstone);
        }
        out
    }

    /// Reads a mutation written by [`Mutation::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Mutation, CodecError> {
        let mut r = Reader { bytes, offset: 0 };
        let version = r.u8("version")?;
        if version != MUTATION_FORMAT_VERSION {
            return Err(CodecError::UnsupportedVersion {
                version,
                supported: MUTATION_FORMAT_VERSION,
            });
        }
        let table = uuid::Uuid::from_bytes(r.array::<16>("table id")?);
        let token = i64::from_be_bytes(r.array("token")?);
        let key = r.bytes("partition key")?;
        let mut m = Mutation::new(table, DecoratedKey { token, key });
        let flags = r.flags("mutation flags", 0b11)?;
        if flags & 1 != 0 {
            m.partition_deletion = Some(r.tombstone()?);
        }
        if flags & 2 != 0 {
            m.static_row = Some(r.row()?);
        }
        for _ in 0..r.count("row count")? {
            let clustering = r.bytes("clustering key")?;
            m.rows.push((clustering, r.row()?));
        }
        for _ in 0..r.count("range tombstone count")? {
            let start = r.bound()?;
            let end = r.bound()?;
            let tombstone = r.tombstone()?;
            m.range_tombstones.push(RangeTombstone {
                range: ClusteringRange { start, end },
                tombstone,
            });
        }
        match r.bytes.len() - r.offset {
            0 => Ok(m),
            count => Err(CodecError::TrailingBytes { count }),
        }
    }
}

/// One clustering row as the mutation encoding lays it out: `clustering bytes | row`.
/// SSTables store a partition's rows in blocks of `rows u32 × this`.
pub(crate) fn encode_clustering_row(out: &mut Vec<u8>, clustering: &[u8], row: &Row) {
    put_bytes(out, clustering);
    put_row(out, row);
}

/// Reads `rows u32 × (clustering bytes, row)` (rows written by
/// [`encode_clustering_row`] after their count); the whole input must be used.
pub(crate) fn decode_rows(bytes: &[u8]) -> Result<Vec<(Bytes, Row)>, CodecError> {
    let mut r = Reader { bytes, offset: 0 };
    let count = r.count("row count")?;
    let mut rows = Vec::with_capacity(count);
    for _ in 0..count {
        let clustering = r.bytes("clustering key")?;
        rows.push((clustering, r.row()?));
    }
    match r.bytes.len() - r.offset {
        0 => Ok(rows),
        count => Err(CodecError::TrailingBytes { count }),
    }
}

/// What a pass over encoded partition parts found without decoding them: whether the
/// parts are *plain* (no tombstone of any kind, no TTL, no empty row), and if so their
/// cell count (row markers included) and timestamp range, as SSTable statistics count
/// them. A compaction may copy a plain partition's bytes as they are: compacting it
/// would change nothing (nothing to shadow, expire or purge, nothing empty to drop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainSkim {
    /// False once anything that is not plain was seen; the other fields then mean
    /// nothing, and the pass stopped there.
    pub plain: bool,
    /// Cells and row markers.
    pub cells: u64,
    /// Static and clustering rows.
    pub rows: u64,
    pub min_timestamp: i64,
    pub max_timestamp: i64,
    /// The header carries a static row.
    pub static_row: bool,
    /// The first and last clustering keys of the row block skimmed.
    pub first_clustering: Option<bytes::Bytes>,
    pub last_clustering: Option<bytes::Bytes>,
}

impl Default for PlainSkim {
    fn default() -> Self {
        PlainSkim {
            plain: true,
            cells: 0,
            rows: 0,
            min_timestamp: i64::MAX,
            max_timestamp: i64::MIN,
            static_row: false,
            first_clustering: None,
            last_clustering: None,
        }
    }
}

impl PlainSkim {
    fn timestamp(&mut self, timestamp: i64) {
        self.min_timestamp = self.min_timestamp.min(timestamp);
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Skims a partition header (the mutation encoding with no clustering rows, as
    /// SSTables store it); returns its token and key bytes. Malformed bytes are an
    /// error or leave the skim not plain (a full decode then reports them).
    pub(crate) fn header<'a>(&mut self, bytes: &'a [u8]) -> Result<(i64, &'a [u8]), CodecError> {
        let mut r = Reader { bytes, offset: 0 };
        let version = r.u8("version")?;
        r.take("table id", 16)?;
        let token = i64::from_be_bytes(r.array("token")?);
        let key_len = r.u32("partition key")? as usize;
        let key = r.take("partition key", key_len)?;
        if version != MUTATION_FORMAT_VERSION {
            self.plain = false;
            return Ok((token, key));
        }
        let flags = r.u8("mutation flags")?;
        if flags & !2 != 0 {
            self.plain = false;
            return Ok((token, key));
        }
        if flags & 2 != 0 {
            self.static_row = true;
            self.row(&mut r)?;
        }
        let rows = r.u32("row count")?;
        let range_tombstones = r.u32("range tombstone count")?;
        if rows != 0 || range_tombstones != 0 || r.offset != bytes.len() {
            self.plain = false;
        }
        Ok((token, key))
    }

    /// Skims a row block's payload (`rows u32 × (clustering bytes, row)`); rows must
    /// be in strictly increasing clustering order, after `previous` (the last
    /// clustering key of the block before, if any). Returns the block's last key.
    pub(crate) fn row_block<'a>(
        &mut self,
        bytes: &'a [u8],
        mut previous: Option<&'a [u8]>,
    ) -> Result<Option<&'a [u8]>, CodecError> {
        let mut r = Reader { bytes, offset: 0 };
        let count = r.count("row count")?;
        for _ in 0..count {
            let len = r.u32("clustering key")? as usize;
            let clustering = r.take("clustering key", len)?;
            if previous.is_some_and(|p| p >= clustering) {
                self.plain = false;
            }
            if self.first_clustering.is_none() {
                self.first_clustering = Some(bytes::Bytes::copy_from_slice(clustering));
            }
            previous = Some(clustering);
            self.row(&mut r)?;
            if !self.plain {
                return Ok(previous);
            }
        }
        if r.offset != bytes.len() {
            self.plain = false;
        }
        self.last_clustering = previous.map(bytes::Bytes::copy_from_slice);
        Ok(previous)
    }

    fn row(&mut self, r: &mut Reader<'_>) -> Result<(), CodecError> {
        self.rows += 1;
        let flags = r.u8("row flags")?;
        if flags & !1 != 0 {
            self.plain = false;
            return Ok(());
        }
        let marked = flags & 1 != 0;
        if marked {
            self.cells += 1;
            self.timestamp(r.i64("row marker timestamp")?);
            if r.u8("expiry")? != 0 {
                self.plain = false;
                return Ok(());
            }
        }
        let cells = r.count("cell count")?;
        if !marked && cells == 0 {
            self.plain = false;
            return Ok(());
        }
        for _ in 0..cells {
            r.u32("cell column")?;
            match r.u8("cell path")? {
                0 => {}
                1 => {
                    let len = r.u32("cell path")? as usize;
                    r.take("cell path", len)?;
                }
                _ => {
                    self.plain = false;
                    return Ok(());
                }
            }
            self.timestamp(r.i64("cell timestamp")?);
            // Live and not expiring: kind 0, expiry tag 0.
            if r.u8("cell kind")? != 0 || r.u8("expiry")? != 0 {
                self.plain = false;
                return Ok(());
            }
            let len = r.u32("cell value")? as usize;
            r.take("cell value", len)?;
            self.cells += 1;
        }
        if r.u32("complex deletion count")? != 0 {
            self.plain = false;
        }
        Ok(())
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("mutation parts are far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_tombstone(out: &mut Vec<u8>, tombstone: &Tombstone) {
    out.extend_from_slice(&tombstone.timestamp.to_be_bytes());
    out.extend_from_slice(&tombstone.deletion_time.to_be_bytes());
}

fn put_expiry(out: &mut Vec<u8>, expiry: Option<&Expiry>) {
    match expiry {
        None => out.push(0),
        Some(expiry) => {
            out.push(1);
            out.extend_from_slice(&expiry.ttl.to_be_bytes());
            out.extend_from_slice(&expiry.expires_at.to_be_bytes());
        }
    }
}

fn put_bound(out: &mut Vec<u8>, bound: Option<&ClusteringBound>) {
    match bound {
        None => out.push(0),
        Some(bound) => {
            out.push(if bound.inclusive { 2 } else { 1 });
            put_bytes(out, &bound.prefix);
        }
    }
}

fn put_row(out: &mut Vec<u8>, row: &Row) {
    let flags = u8::from(row.marker.is_some()) | (u8::from(row.deletion.is_some()) << 1);
    out.push(flags);
    if let Some(marker) = &row.marker {
        out.extend_from_slice(&marker.timestamp.to_be_bytes());
        put_expiry(out, marker.expiry.as_ref());
    }
    if let Some(tombstone) = &row.deletion {
        put_tombstone(out, tombstone);
    }
    put_len(out, row.cells.len());
    for (key, cell) in &row.cells {
        out.extend_from_slice(&key.column.to_be_bytes());
        match &key.path {
            None => out.push(0),
            Some(path) => {
                out.push(1);
                put_bytes(out, path);
            }
        }
        out.extend_from_slice(&cell.timestamp.to_be_bytes());
        match &cell.kind {
            CellKind::Live { value, expiry } => {
                out.push(0);
                put_expiry(out, expiry.as_ref());
                put_bytes(out, value);
            }
            CellKind::Dead { deletion_time } => {
                out.push(1);
                out.extend_from_slice(&deletion_time.to_be_bytes());
            }
        }
    }
    put_len(out, row.complex_deletions.len());
    for (column, tombstone) in &row.complex_deletions {
        out.extend_from_slice(&column.to_be_bytes());
        put_tombstone(out, tombstone);
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, needed: usize) -> Result<&'a [u8], CodecError> {
        let available = self.bytes.len() - self.offset;
        if needed > available {
            return Err(CodecError::Truncated {
                field,
                offset: self.offset,
                needed,
                available,
            });
        }
        let start = self.offset;
        self.offset += needed;
        Ok(&self.bytes[start..self.offset])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        let slice = self.take(field, N)?;
        Ok(slice.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, CodecError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// A tag byte that must be below `limit`.
    fn tag(&mut self, field: &'static str, limit: u8) -> Result<u8, CodecError> {
        let offset = self.offset;
        let tag = self.u8(field)?;
        if tag >= limit {
            return Err(CodecError::InvalidTag { field, tag, offset });
        }
        Ok(tag)
    }

    /// A flags byte with no bits outside `mask`.
    fn flags(&mut self, field: &'static str, mask: u8) -> Result<u8, CodecError> {
        let offset = self.offset;
        let tag = self.u8(field)?;
        if tag & !mask != 0 {
            return Err(CodecError::InvalidTag { field, tag, offset });
        }
        Ok(tag)
    }

    /// An element count. Each element takes at least one byte, so a count
    /// beyond the bytes left is truncation, found before looping on it.
    fn count(&mut self, field: &'static str) -> Result<usize, CodecError> {
        let offset = self.offset;
        let count = self.u32(field)? as usize;
        let available = self.bytes.len() - self.offset;
        if count > available {
            return Err(CodecError::Truncated {
                field,
                offset,
                needed: count,
                available,
            });
        }
        Ok(count)
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, CodecError> {
        let len = self.u32(field)? as usize;
        Ok(Bytes::copy_from_slice(self.take(field, len)?))
    }

    fn tombstone(&mut self) -> Result<Tombstone, CodecError> {
        let timestamp = self.i64("tombstone timestamp")?;
        let deletion_time = self.i32("tombstone deletion time")?;
        Ok(Tombstone::new(timestamp, deletion_time))
    }

    fn expiry(&mut self) -> Result<Option<Expiry>, CodecError> {
        if self.tag("expiry", 2)? == 0 {
            return Ok(None);
        }
        let ttl = self.i32("ttl")?;
        let expires_at = self.i32("expiry time")?;
        Ok(Some(Expiry { ttl, expires_at }))
    }

    fn bound(&mut self) -> Result<Option<ClusteringBound>, CodecError> {
        let tag = self.tag("clustering bound", 3)?;
        if tag == 0 {
            return Ok(None);
        }
        let prefix = self.bytes("clustering bound prefix")?;
        Ok(Some(ClusteringBound {
            prefix,
            inclusive: tag == 2,
        }))
    }

    fn row(&mut self) -> Result<Row, CodecError> {
        let flags = self.flags("row flags", 0b11)?;
        let mut row = Row::new();
        if flags & 1 != 0 {
            let timestamp = self.i64("row marker timestamp")?;
            row.marker = Some(RowMarker::new(timestamp, self.expiry()?));
        }
        if flags & 2 != 0 {
            row.deletion = Some(self.tombstone()?);
        }
        for _ in 0..self.count("cell count")? {
            let (key, cell) = self.cell()?;
            row.cells.insert(key, cell);
        }
        for _ in 0..self.count("complex deletion count")? {
            let column = self.u32("complex deletion column")?;
            row.complex_deletions.insert(column, self.tombstone()?);
        }
        Ok(row)
    }

    fn cell(&mut self) -> Result<(CellKey, Cell), CodecError> {
        let column = self.u32("cell column")?;
        let path = match self.tag("cell path", 2)? {
            0 => None,
            _ => Some(self.bytes("cell path")?),
        };
        let timestamp = self.i64("cell timestamp")?;
        let kind = match self.tag("cell kind", 2)? {
            0 => {
                let expiry = self.expiry()?;
                let value = self.bytes("cell value")?;
                CellKind::Live { value, expiry }
            }
            _ => CellKind::Dead {
                deletion_time: self.i32("cell deletion time")?,
            },
        };
        Ok((CellKey { column, path }, Cell { timestamp, kind }))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Mutation {
        let row = Row::with_marker(10, Some(Expiry::new(60, 1_000)))
            .cell(1, Cell::live(11, &b"value"[..]))
            .cell(2, Cell::dead(12, 99))
            .element(
                3,
                &b"k"[..],
                Cell::expiring(13, &b"v"[..], Expiry::new(5, 7)),
            )
            .complex_deletion(3, Tombstone::new(9, 8));
        Mutation::new(uuid::Uuid::new_v4(), DecoratedKey::new(-42, &b"pk"[..]))
            .with_row(&b"ck"[..], row)
            .with_static_row(Row::new().cell(4, Cell::live(1, Bytes::new())))
            .with_range_tombstone(
                ClusteringRange {
                    start: Some(ClusteringBound {
                        prefix: Bytes::from_static(b"a"),
                        inclusive: true,
                    }),
                    end: None,
                },
                Tombstone::new(5, 6),
            )
    }

    #[test]
    fn a_full_mutation_round_trips() {
        let mut m = sample();
        m.partition_deletion = Some(Tombstone::new(i64::MIN, i32::MAX));
        assert_eq!(Mutation::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn integers_are_big_endian_after_the_version() {
        let m = Mutation::new(uuid::Uuid::nil(), DecoratedKey::new(1, &b"k"[..]));
        let encoded = m.encode();
        assert_eq!(encoded[0], MUTATION_FORMAT_VERSION);
        assert_eq!(&encoded[17..25], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&encoded[25..30], &[0, 0, 0, 1, b'k']);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let encoded = sample().encode();
        for len in 0..encoded.len() {
            assert!(Mutation::decode(&encoded[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn unknown_versions_and_tags_and_trailing_bytes_are_refused() {
        let mut encoded = sample().encode();
        encoded[0] = 2;
        assert_eq!(
            Mutation::decode(&encoded),
            Err(CodecError::UnsupportedVersion {
                version: 2,
                supported: 1
            })
        );
        let mut encoded = sample().encode();
        encoded.push(0);
        assert_eq!(
            Mutation::decode(&encoded),
            Err(CodecError::TrailingBytes { count: 1 })
        );
        let m = Mutation::new(uuid::Uuid::nil(), DecoratedKey::new(1, &b"k"[..]));
        let mut encoded = m.encode();
        encoded[30] = 0x80;
        assert!(matches!(
            Mutation::decode(&encoded),
            Err(CodecError::InvalidTag { offset: 30, .. })
        ));
    }

    #[test]
    fn log_entries_round_trip() {
        let truncate = LogEntry::Truncate {
            table: uuid::Uuid::new_v4(),
        };
        let encoded = truncate.encode();
        assert_eq!(encoded.len(), 17);
        assert_eq!(LogEntry::decode(&encoded), Ok(truncate));
        assert!(LogEntry::decode(&encoded[..16]).is_err());
        let mutation = LogEntry::Mutation(Box::new(sample()));
        assert_eq!(LogEntry::decode(&mutation.encode()), Ok(mutation));
        assert!(matches!(
            LogEntry::decode(&[0x80]),
            Err(CodecError::UnsupportedVersion { version: 0x80, .. })
        ));
        assert!(LogEntry::decode(&[]).is_err());
    }

    fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from)
    }

    fn tombstone() -> impl Strategy<Value = Tombstone> {
        (any::<i64>(), any::<i32>()).prop_map(|(t, d)| Tombstone::new(t, d))
    }

    fn expiry() -> impl Strategy<Value = Option<Expiry>> {
        proptest::option::of(
            (any::<i32>(), any::<i32>()).prop_map(|(ttl, expires_at)| Expiry { ttl, expires_at }),
        )
    }

    fn cell() -> impl Strategy<Value = Cell> {
        prop_oneof![
            (any::<i64>(), bytes(), expiry()).prop_map(|(timestamp, value, expiry)| Cell {
                timestamp,
                kind: CellKind::Live { value, expiry }
            }),
            (any::<i64>(), any::<i32>()).prop_map(|(t, d)| Cell::dead(t, d)),
        ]
    }

    fn row() -> impl Strategy<Value = Row> {
        let cells = proptest::collection::btree_map(
            (0u32..6, proptest::option::of(bytes()))
                .prop_map(|(column, path)| CellKey { column, path }),
            cell(),
            0..5,
        );
        let marker =
            proptest::option::of((any::<i64>(), expiry()).prop_map(|(t, e)| RowMarker::new(t, e)));
        let complex = proptest::collection::btree_map(any::<u32>(), tombstone(), 0..3);
        (marker, proptest::option::of(tombstone()), cells, complex).prop_map(
            |(marker, deletion, cells, complex_deletions)| Row {
                marker,
                deletion,
                cells: cells.into_iter().collect(),
                complex_deletions,
            },
        )
    }

    fn bound() -> impl Strategy<Value = Option<ClusteringBound>> {
        proptest::option::of(
            (bytes(), any::<bool>())
                .prop_map(|(prefix, inclusive)| ClusteringBound { prefix, inclusive }),
        )
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let rts = proptest::collection::vec(
            (bound(), bound(), tombstone()).prop_map(|(start, end, tombstone)| RangeTombstone {
                range: ClusteringRange { start, end },
                tombstone,
            }),
            0..3,
        );
        (
            any::<u128>(),
            any::<i64>(),
            bytes(),
            proptest::option::of(tombstone()),
            proptest::option::of(row()),
            proptest::collection::vec((bytes(), row()), 0..4),
            rts,
        )
            .prop_map(|(id, token, key, pd, static_row, rows, range_tombstones)| {
                Mutation {
                    table: uuid::Uuid::from_u128(id),
                    key: DecoratedKey { token, key },
                    partition_deletion: pd,
                    static_row,
                    rows,
                    range_tombstones,
                }
            })
    }

    proptest! {
        #[test]
        fn any_mutation_round_trips(m in mutation()) {
            prop_assert_eq!(Mutation::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn a_skim_agrees_with_decoding(m in mutation(), skip_static in any::<bool>()) {
            let mut m = m;
            if skip_static {
                m.static_row = None;
            }
            let rows: std::collections::BTreeMap<Bytes, Row> = m.rows.drain(..).collect();
            let header = m.encode();
            let mut block = Vec::new();
            put_len(&mut block, rows.len());
            for (clustering, row) in &rows {
                encode_clustering_row(&mut block, clustering, row);
            }
            let mut skim = PlainSkim::default();
            let (token, key) = skim.header(&header).expect("header skims");
            prop_assert_eq!((token, key), (m.key.token, &m.key.key[..]));
            if skim.plain {
                skim.row_block(&block, None).expect("block skims");
            }
            let all_rows: Vec<&Row> = m.static_row.iter().chain(rows.values()).collect();
            let plain_row = |r: &&Row| {
                r.deletion.is_none()
                    && r.complex_deletions.is_empty()
                    && r.marker.is_none_or(|m| m.expiry.is_none())
                    && (r.marker.is_some() || !r.cells.is_empty())
                    && r.cells.values().all(|c| {
                        matches!(c.kind, CellKind::Live { expiry: None, .. })
                    })
            };
            let plain = m.partition_deletion.is_none()
                && m.range_tombstones.is_empty()
                && all_rows.iter().all(plain_row);
            prop_assert_eq!(skim.plain, plain);
            if plain {
                let timestamps: Vec<i64> = all_rows
                    .iter()
                    .flat_map(|r| {
                        r.marker.iter().map(|m| m.timestamp)
                            .chain(r.cells.values().map(|c| c.timestamp))
                    })
                    .collect();
                prop_assert_eq!(skim.cells, timestamps.len() as u64);
                prop_assert_eq!(skim.rows, all_rows.len() as u64);
                prop_assert_eq!(skim.static_row, m.static_row.is_some());
                prop_assert_eq!(skim.first_clustering.as_ref(), rows.keys().next());
                prop_assert_eq!(skim.last_clustering.as_ref(), rows.keys().next_back());
                if !timestamps.is_empty() {
                    prop_assert_eq!(skim.min_timestamp, *timestamps.iter().min().expect("some"));
                    prop_assert_eq!(skim.max_timestamp, *timestamps.iter().max().expect("some"));
                }
            }
        }

        #[test]
        fn skimming_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut skim = PlainSkim::default();
            let _ = skim.header(&bytes);
            let _ = skim.row_block(&bytes, None);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Mutation::decode(&bytes);
        }

        #[test]
        fn corrupted_encodings_never_panic(m in mutation(), at in any::<usize>(), byte in any::<u8>()) {
            let mut encoded = m.encode();
            let at = at % encoded.len();
            encoded[at] = byte;
            let _ = Mutation::decode(&encoded);
        }
    }
}
