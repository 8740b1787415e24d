//! CQL types, their wire encodings and byte-ordered key encodings.
