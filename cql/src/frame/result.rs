//! RESULT bodies: rows and their metadata, prepared statements, schema changes.
//!
//! Rows are written once, straight into their wire form, by a [`RowsWriter`]
//! that the executor feeds cell by cell; the frame encoder then copies that
//! block into the output buffer with the metadata in front of it.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::primitives::{put_bytes, put_int, put_short_bytes, put_string, put_string_list};
use super::types::ColumnType;
use super::FrameError;

/// A column of result or bind metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub keyspace: String,
    pub table: String,
    pub name: String,
    pub ty: ColumnType,
}

/// Metadata of a Rows result (or the result part of a Prepared result).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultMetadata {
    /// The columns; with `no_metadata` only their count goes on the wire.
    /// Shared, so that a prepared statement's columns are built once, not
    /// for every result.
    pub columns: Arc<[ColumnSpec]>,
    /// Set when more pages follow (the Has_more_pages flag).
    pub paging_state: Option<Bytes>,
    /// The client asked to skip metadata (Skip_metadata in QUERY/EXECUTE).
    pub no_metadata: bool,
}

/// A Rows result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub metadata: ResultMetadata,
    pub rows_count: i32,
    /// `rows_count` rows of `columns.len()` [bytes] each, already encoded.
    pub rows_content: Bytes,
}

/// Bind metadata of a Prepared result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreparedMetadata {
    pub columns: Vec<ColumnSpec>,
    /// Indexes into `columns` of the partition key components (sent in v4 only).
    pub pk_indexes: Vec<u16>,
}

/// A Prepared result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub id: Bytes,
    pub metadata: PreparedMetadata,
    pub result_metadata: ResultMetadata,
}

/// What happened to a schema object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChangeType {
    Created,
    Updated,
    Dropped,
}

impl SchemaChangeType {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Dropped => "DROPPED",
        }
    }
}

/// The changed schema object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChangeTarget {
    Keyspace(String),
    /// Keyspace, table.
    Table(String, String),
    /// Keyspace, user type.
    Type(String, String),
    /// Keyspace, function, argument types (CQL type names).
    Function(String, String, Vec<String>),
    /// Keyspace, aggregate, argument types (CQL type names).
    Aggregate(String, String, Vec<String>),
}

/// A schema change, as a RESULT and as an EVENT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    pub change: SchemaChangeType,
    pub target: SchemaChangeTarget,
}

/// The kinds of RESULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultResponse {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared(Prepared),
    SchemaChange(SchemaChange),
}

mod metadata_flags {
    pub const GLOBAL_TABLE_SPEC: i32 = 0x0001;
    pub const HAS_MORE_PAGES: i32 = 0x0002;
    pub const NO_METADATA: i32 = 0x0004;
}

fn count(n: usize) -> i32 {
    i32::try_from(n).expect("column counts stay far below i32::MAX")
}

/// The keyspace and table every column shares, if they share one.
fn global_table_spec(columns: &[ColumnSpec]) -> Option<(&str, &str)> {
    let first = columns.first()?;
    columns
        .iter()
        .all(|c| c.keyspace == first.keyspace && c.table == first.table)
        .then_some((first.keyspace.as_str(), first.table.as_str()))
}

/// Writes [global_table_spec]? and the col_specs (the caller wrote the flags).
fn encode_column_specs(columns: &[ColumnSpec], version: u8, out: &mut BytesMut) {
    let global = global_table_spec(columns);
    if let Some((keyspace, table)) = global {
        put_string(out, keyspace);
        put_string(out, table);
    }
    for column in columns {
        if global.is_none() {
            put_string(out, &column.keyspace);
            put_string(out, &column.table);
        }
        put_string(out, &column.name);
        column.ty.encode(version, out);
    }
}

fn global_flag(columns: &[ColumnSpec]) -> i32 {
    if global_table_spec(columns).is_some() {
        metadata_flags::GLOBAL_TABLE_SPEC
    } else {
        0
    }
}

impl ResultMetadata {
    /// Metadata for a result without columns (e.g. a Prepared non-SELECT).
    pub fn empty() -> Self {
        Self {
            columns: Arc::from([]),
            paging_state: None,
            no_metadata: true,
        }
    }

    /// Writes <metadata>.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        let mut flags = 0;
        if self.paging_state.is_some() {
            flags |= metadata_flags::HAS_MORE_PAGES;
        }
        if self.no_metadata {
            flags |= metadata_flags::NO_METADATA;
        } else {
            flags |= global_flag(&self.columns);
        }
        put_int(out, flags);
        put_int(out, count(self.columns.len()));
        if let Some(state) = &self.paging_state {
            put_bytes(out, Some(state));
        }
        if !self.no_metadata {
            encode_column_specs(&self.columns, version, out);
        }
    }
}

impl PreparedMetadata {
    /// Writes the bind <metadata> of a Prepared result.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        put_int(out, global_flag(&self.columns));
        put_int(out, count(self.columns.len()));
        if version >= 4 {
            put_int(out, count(self.pk_indexes.len()));
            for index in &self.pk_indexes {
                out.put_u16(*index);
            }
        }
        encode_column_specs(&self.columns, version, out);
    }
}

impl SchemaChange {
    /// Writes <change_type><target><options>. Protocol v3 has no function or
    /// aggregate targets; those changes reach a v3 client as an update of
    /// their keyspace, which makes it refresh the keyspace's metadata.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        use SchemaChangeTarget as T;
        if version < 4 {
            if let T::Function(keyspace, ..) | T::Aggregate(keyspace, ..) = &self.target {
                put_string(out, SchemaChangeType::Updated.as_str());
                put_string(out, "KEYSPACE");
                put_string(out, keyspace);
                return;
            }
        }
        put_string(out, self.change.as_str());
        match &self.target {
            T::Keyspace(keyspace) => {
                put_string(out, "KEYSPACE");
                put_string(out, keyspace);
            }
            T::Table(keyspace, name) | T::Type(keyspace, name) => {
                let kind = if matches!(self.target, T::Table(..)) {
                    "TABLE"
                } else {
                    "TYPE"
                };
                put_string(out, kind);
                put_string(out, keyspace);
                put_string(out, name);
            }
            T::Function(keyspace, name, args) | T::Aggregate(keyspace, name, args) => {
                let kind = if matches!(self.target, T::Function(..)) {
                    "FUNCTION"
                } else {
                    "AGGREGATE"
                };
                put_string(out, kind);
                put_string(out, keyspace);
                put_string(out, name);
                put_string_list(out, args);
            }
        }
    }
}

mod result_kind {
    pub const VOID: i32 = 0x0001;
    pub const ROWS: i32 = 0x0002;
    pub const SET_KEYSPACE: i32 = 0x0003;
    pub const PREPARED: i32 = 0x0004;
    pub const SCHEMA_CHANGE: i32 = 0x0005;
}

impl ResultResponse {
    /// Writes the RESULT body.
    pub fn encode(&self, version: u8, out: &mut BytesMut) {
        match self {
            Self::Void => put_int(out, result_kind::VOID),
            Self::Rows(rows) => {
                put_int(out, result_kind::ROWS);
                rows.metadata.encode(version, out);
                put_int(out, rows.rows_count);
                out.put_slice(&rows.rows_content);
            }
            Self::SetKeyspace(keyspace) => {
                put_int(out, result_kind::SET_KEYSPACE);
                put_string(out, keyspace);
            }
            Self::Prepared(prepared) => {
                put_int(out, result_kind::PREPARED);
                put_short_bytes(out, &prepared.id);
                prepared.metadata.encode(version, out);
                prepared.result_metadata.encode(version, out);
            }
            Self::SchemaChange(change) => {
                put_int(out, result_kind::SCHEMA_CHANGE);
                change.encode(version, out);
            }
        }
    }
}

/// Builds <rows_content> cell by cell, counting rows.
///
/// Mistakes (a row with the wrong number of cells) are remembered and reported
/// by [`RowsWriter::finish`], so the per-cell calls stay infallible.
#[derive(Debug)]
pub struct RowsWriter {
    columns: usize,
    buf: BytesMut,
    cells_in_row: usize,
    rows: i32,
    bad_row_width: Option<usize>,
}

impl RowsWriter {
    /// A writer for rows of `columns` cells.
    pub fn new(columns: usize) -> Self {
        Self::with_capacity(columns, 0)
    }

    /// A writer with `bytes` of buffer reserved.
    pub fn with_capacity(columns: usize, bytes: usize) -> Self {
        Self {
            columns,
            buf: BytesMut::with_capacity(bytes),
            cells_in_row: 0,
            rows: 0,
            bad_row_width: None,
        }
    }

    /// Appends a cell: `None` is null.
    pub fn push_value(&mut self, value: Option<&[u8]>) {
        put_bytes(&mut self.buf, value);
        self.cells_in_row += 1;
    }

    /// Appends a cell whose bytes `write` appends to the buffer it is given,
    /// saving a temporary buffer for values the executor serializes itself.
    pub fn push_with(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let at = self.buf.len();
        self.buf.put_i32(0);
        write(&mut self.buf);
        let len = i32::try_from(self.buf.len() - at - 4).unwrap_or(i32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self.cells_in_row += 1;
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        if self.cells_in_row != self.columns && self.bad_row_width.is_none() {
            self.bad_row_width = Some(self.cells_in_row);
        }
        self.cells_in_row = 0;
        self.rows = self.rows.saturating_add(1);
    }

    /// Rows ended so far.
    pub fn rows_count(&self) -> i32 {
        self.rows
    }

    /// Bytes of row content so far (for byte-bounded pages).
    pub fn encoded_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The finished result, or an error if a row had the wrong width, a row
    /// was left open, or `metadata` has a different column count.
    pub fn finish(self, metadata: ResultMetadata) -> Result<Rows, FrameError> {
        let expected = self.columns;
        if let Some(got) = self.bad_row_width {
            return Err(FrameError::RowWidth { expected, got });
        }
        if self.cells_in_row != 0 {
            return Err(FrameError::RowWidth {
                expected,
                got: self.cells_in_row,
            });
        }
        if metadata.columns.len() != expected {
            return Err(FrameError::RowWidth {
                expected: metadata.columns.len(),
                got: expected,
            });
        }
        Ok(Rows {
            metadata,
            rows_count: self.rows,
            rows_content: self.buf.freeze(),
        })
    }
}
