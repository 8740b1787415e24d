//! Schema changes: persisting a new schema snapshot and installing it on
//! every shard.
//!
//! Schema changes are serialized through shard 0, which owns the schema
//! file. A change is durable (written to a temporary file, fsynced, renamed
//! over the old one, directory fsynced) before any shard sees it, so a
//! statement that saw the new schema can never outlive it across a crash.
//! Schema changes are rare and small; the file IO runs on glommio's blocking
//! thread pool, off the reactor.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage::schema::Schema;

use crate::error::ProxyError;
use crate::local;

/// The file that holds the schema snapshot under the first data directory.
pub fn schema_file(data_dir: &Path) -> PathBuf {
    data_dir.join("schema.json")
}

/// Loads the persisted schema, or an empty one when there is none yet.
pub fn load_schema(data_dir: &Path) -> Result<Schema, ProxyError> {
    let path = schema_file(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => Schema::from_json(&bytes).map_err(|e| {
            ProxyError::Schema(format!("{}: corrupt schema file: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Schema::default()),
        Err(e) => Err(ProxyError::Schema(format!("read {}: {e}", path.display()))),
    }
}

fn write_schema_file(data_dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(data_dir)?;
    let path = schema_file(data_dir);
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Persists `schema` and installs it on every shard. Runs on shard 0.
pub async fn publish(data_dir: PathBuf, schema: Schema) -> Result<(), ProxyError> {
    let bytes = schema
        .to_json()
        .map_err(|e| ProxyError::Schema(format!("serialize schema: {e}")))?;
    let written = scheduler::spawn_blocking(move || write_schema_file(&data_dir, &bytes)).await;
    written.map_err(|e| ProxyError::Schema(format!("write schema file: {e}")))?;
    let schema = Arc::new(schema);
    let installed = scheduler::smp::submit_to_all(move || {
        let schema = schema.clone();
        async move { local::set_schema(schema).await.map_err(|e| e.to_string()) }
    })
    .await
    .map_err(|e| ProxyError::Schema(format!("install schema: {e}")))?;
    for result in installed {
        result.map_err(|e| ProxyError::Schema(format!("install schema: {e}")))?;
    }
    Ok(())
}
