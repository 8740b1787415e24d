//! The CQL layer: native protocol frames, the CQL parser, statement execution.
pub mod frame;
pub mod parser;
