//! Memtables.
