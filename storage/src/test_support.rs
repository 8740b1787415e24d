//! Helpers shared by the storage crate's tests that do real IO on a shard.
use std::future::Future;
use std::path::{Path, PathBuf};

use scheduler::{run_shards, ShardSetConfig};

/// A fresh, empty directory under the workspace's `target/<area>/<name>`,
/// on the real disk so O_DIRECT is exercised (not tmpfs).
pub(crate) fn test_dir(area: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(area)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Runs `body` on a one-shard set and returns its result.
pub(crate) fn on_shard<F, Fut, T>(body: F) -> T
where
    F: FnOnce() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let mut results =
        run_shards(ShardSetConfig::new(1), move |_| body.clone()()).expect("shard runs");
    results.pop().expect("one shard")
}
