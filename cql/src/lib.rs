//! The CQL layer: the native protocol server, the CQL parser, and statement
//! preparation and execution.
//!
//! `cql` executes every statement through `cluster`'s storage proxy and
//! never names a memtable or an SSTable, so one node and a cluster run the
//! same statement code.
pub mod ddl;
pub mod describe;
pub mod error;
pub mod frame;
pub mod functions;
pub mod json;
pub mod lwt;
pub mod metadata;
pub mod modify;
pub mod parser;
pub mod processor;
pub mod select;
pub mod server;
pub mod system;
pub mod values;
