//! Integration tests: the real `tessera` binary driven by the `scylla` driver
//! and by hand-built frames.
mod harness;

mod basic;
mod crash;
mod errors;
mod json_and_functions;
mod lwt;
mod metrics;
mod paging;
mod python;
mod raw_frames;
mod storage;
mod types;
