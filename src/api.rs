//! The operations REST API on `api_port`: what an operator (or a nodetool-like CLI) asks
//! of one node. Paths follow ScyllaDB's REST API so such a tool can call either server.
//!
//! | method | path                                                  | does                     |
//! |--------|-------------------------------------------------------|--------------------------|
//! | POST   | `/storage_service/keyspace_flush/{ks}[?cf=t1,t2]`     | flushes the tables' memtables on every shard |
//! | POST   | `/storage_service/keyspace_compaction/{ks}[?cf=t1,t2]`| major compaction on every shard, answers when done |
//! | GET    | `/column_family/live_ss_table_count/{ks}:{table}`     | live SSTables of the table, all shards |
//!
//! Answers are JSON; errors are `{"message": ..., "code": ...}` with 400 for an unknown
//! keyspace or table, 404 for an unknown path, 405 for a known path with another method,
//! 500 when the storage engine fails.
//!
//! Design: the server runs on shard 0 (`crate::http`, in the Maintenance group), resolves
//! names against shard 0's schema snapshot, and fans the work out with
//! `scheduler::smp::submit_to_all`; on each shard the job runs in the Flush or Compaction
//! group, so its IO gets that class's shares, as the background flushes and compactions do.

use std::io;
use std::net::SocketAddr;

use cluster::local;
use scheduler::Group;
use storage::model::TableId;

use crate::http::{HttpServer, Reply, Request};

/// The bound API endpoint.
pub struct ApiServer {
    server: HttpServer,
}

impl ApiServer {
    /// Binds the listener; must be called on shard 0's executor.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            server: HttpServer::bind(addr, "api")?,
        })
    }

    /// Serves requests forever; dropping the task that runs it stops it.
    pub async fn run(self) -> io::Result<()> {
        self.server.run(handle).await
    }
}

/// The operations on keyspaces this API runs on every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Flush,
    Compaction,
}

/// A request routed to what it asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Keyspace(Operation, &'a str),
    SstableCount(&'a str),
}

/// Which route `path` names, and the method it takes.
fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    let segment = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
    };
    if let Some(keyspace) = segment("/storage_service/keyspace_flush/") {
        return Some((Route::Keyspace(Operation::Flush, keyspace), "POST"));
    }
    if let Some(keyspace) = segment("/storage_service/keyspace_compaction/") {
        return Some((Route::Keyspace(Operation::Compaction, keyspace), "POST"));
    }
    if let Some(name) = segment("/column_family/live_ss_table_count/") {
        return Some((Route::SstableCount(name), "GET"));
    }
    None
}

async fn handle(request: Request) -> Reply {
    let path = request.path().to_owned();
    let Some((route, method)) = self::route(&path) else {
        return Reply::error(404, &format!("no such path: {path}"));
    };
    if request.method != method {
        return Reply::error(405, &format!("{path} takes {method}"));
    }
    match route {
        Route::Keyspace(operation, keyspace) => {
            let keyspace = crate::http::percent_decode(keyspace);
            let tables = match resolve_tables(&keyspace, request.query("cf").as_deref()) {
                Ok(tables) => tables,
                Err(message) => return Reply::error(400, &message),
            };
            match run_on_all_shards(operation, tables).await {
                Ok(()) => Reply::json(200, "\"\""),
                Err(message) => Reply::error(500, &message),
            }
        }
        Route::SstableCount(name) => {
            let name = crate::http::percent_decode(name);
            let Some((keyspace, table)) = name.split_once(':') else {
                return Reply::error(400, &format!("expected keyspace:table, got {name}"));
            };
            match resolve_tables(keyspace, Some(table)) {
                Ok(tables) => sstable_count(tables[0]).await,
                Err(message) => Reply::error(400, &message),
            }
        }
    }
}

/// The ids of `keyspace`'s tables named in `cf` (comma-separated), or of all its tables.
fn resolve_tables(keyspace: &str, cf: Option<&str>) -> Result<Vec<TableId>, String> {
    let schema = local::schema();
    let Some(def) = schema.keyspace(keyspace) else {
        return Err(format!("keyspace {keyspace} does not exist"));
    };
    let names: Vec<&str> = cf
        .map(|cf| {
            cf.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(def.tables.values().map(|t| t.id).collect());
    }
    names
        .into_iter()
        .map(|name| {
            def.tables
                .get(name)
                .map(|t| t.id)
                .ok_or_else(|| format!("table {keyspace}.{name} does not exist"))
        })
        .collect()
}

/// Runs `operation` on `tables` on every shard, each shard's job in its group; returns the
/// first failure's message.
async fn run_on_all_shards(operation: Operation, tables: Vec<TableId>) -> Result<(), String> {
    let results = scheduler::smp::submit_to_all(move || {
        let tables = tables.clone();
        async move {
            let group = match operation {
                Operation::Flush => Group::Flush,
                Operation::Compaction => Group::Compaction,
            };
            scheduler::spawn_in(group, run_on_this_shard(operation, tables)).await
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    results.into_iter().collect()
}

async fn run_on_this_shard(operation: Operation, tables: Vec<TableId>) -> Result<(), String> {
    for table in tables {
        let result = match operation {
            Operation::Flush => local::flush(table).await,
            Operation::Compaction => local::major_compaction(table).await.map(drop),
        };
        match result {
            Ok(()) => {}
            // Dropped while the request ran: nothing left to do for it.
            Err(storage::error::StorageError::UnknownTable { .. }) => {}
            Err(error) => {
                tracing::error!(%table, ?operation, %error, "operator request failed");
                return Err(error.to_string());
            }
        }
    }
    Ok(())
}

/// Live SSTables of `table`, summed over the shards.
async fn sstable_count(table: TableId) -> Reply {
    let counts = scheduler::smp::submit_to_all(move || async move {
        local::table(table).map_or(0, |t| t.sstable_count())
    })
    .await;
    match counts {
        Ok(counts) => Reply::json(200, counts.iter().sum::<usize>().to_string()),
        Err(error) => Reply::error(500, &error.to_string()),
    }
}

/// Where the API listens.
pub fn address(config: &crate::config::Config) -> anyhow::Result<SocketAddr> {
    crate::node::socket_addr(config.effective_api_address(), config.api_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_operations() {
        assert_eq!(
            route("/storage_service/keyspace_flush/ks"),
            Some((Route::Keyspace(Operation::Flush, "ks"), "POST"))
        );
        assert_eq!(
            route("/storage_service/keyspace_compaction/ks"),
            Some((Route::Keyspace(Operation::Compaction, "ks"), "POST"))
        );
        assert_eq!(
            route("/column_family/live_ss_table_count/ks:t"),
            Some((Route::SstableCount("ks:t"), "GET"))
        );
        assert_eq!(route("/storage_service/keyspace_flush/"), None);
        assert_eq!(route("/storage_service/keyspace_flush/ks/x"), None);
        assert_eq!(route("/nope"), None);
    }
}
