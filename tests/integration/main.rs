//! Integration tests: the real `tessera` binary driven by the `scylla` driver
//! and by hand-built frames.
mod harness;

mod basic;
mod errors;
mod paging;
mod raw_frames;
mod types;
