//! Result and bind metadata: schema types in their wire form.
use storage::schema::TableDef;
use storage::types::CqlType;

use crate::frame::{ColumnSpec, ColumnType};

/// The wire type option of a schema type.
pub fn column_type(ty: &CqlType) -> ColumnType {
    match ty {
        CqlType::Ascii => ColumnType::Ascii,
        CqlType::Bigint => ColumnType::Bigint,
        CqlType::Blob => ColumnType::Blob,
        CqlType::Boolean => ColumnType::Boolean,
        CqlType::Counter => ColumnType::Counter,
        CqlType::Date => ColumnType::Date,
        CqlType::Decimal => ColumnType::Decimal,
        CqlType::Double => ColumnType::Double,
        CqlType::Duration => ColumnType::Duration,
        CqlType::Float => ColumnType::Float,
        CqlType::Inet => ColumnType::Inet,
        CqlType::Int => ColumnType::Int,
        CqlType::Smallint => ColumnType::Smallint,
        CqlType::Text => ColumnType::Varchar,
        CqlType::Time => ColumnType::Time,
        CqlType::Timestamp => ColumnType::Timestamp,
        CqlType::Timeuuid => ColumnType::Timeuuid,
        CqlType::Tinyint => ColumnType::Tinyint,
        CqlType::Uuid => ColumnType::Uuid,
        CqlType::Varint => ColumnType::Varint,
        CqlType::List { elem, .. } => ColumnType::List(Box::new(column_type(elem))),
        CqlType::Set { elem, .. } => ColumnType::Set(Box::new(column_type(elem))),
        CqlType::Map { key, value, .. } => {
            ColumnType::Map(Box::new(column_type(key)), Box::new(column_type(value)))
        }
        CqlType::Tuple(items) => ColumnType::Tuple(items.iter().map(column_type).collect()),
        CqlType::Udt(udt) => ColumnType::Udt {
            keyspace: udt.keyspace.clone(),
            name: udt.name.clone(),
            fields: udt
                .fields
                .iter()
                .map(|(name, ty)| (name.clone(), column_type(ty)))
                .collect(),
        },
    }
}

/// A column spec for `name` of `ty` in `table`.
pub fn column_spec(table: &TableDef, name: &str, ty: &CqlType) -> ColumnSpec {
    ColumnSpec {
        keyspace: table.keyspace.clone(),
        table: table.name.clone(),
        name: name.to_string(),
        ty: column_type(ty),
    }
}
