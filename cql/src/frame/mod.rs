//! CQL native protocol frames (v3/v4).
