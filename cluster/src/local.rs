//! The state one shard owns: its [`Database`] and its copy of the schema.
//!
//! It lives in a thread local because a shard is a thread: jobs sent by
//! other shards with `scheduler::smp::submit_to` find it here. Nothing in it
//! is shared with another shard; the schema snapshot is an immutable `Arc`
//! that every shard holds its own reference to.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use storage::database::Database;
use storage::schema::Schema;

/// One shard's replica state.
pub struct LocalShard {
    db: RefCell<Database>,
    schema: RefCell<Arc<Schema>>,
    stats: Cell<ProxyStats>,
}

/// What this shard's coordinator did, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests whose data this shard owns, run with no message.
    pub local_requests: u64,
    /// Requests sent to the shard that owns their data.
    pub forwarded_requests: u64,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<LocalShard>>> = const { RefCell::new(None) };
}

/// Installs this shard's state; called once when the shard starts.
pub fn init(schema: Arc<Schema>) {
    let mut db = Database::new();
    for table in schema.tables() {
        // A fresh database has no tables, so this cannot collide.
        let _ = db.create_table(table.id);
    }
    LOCAL.with(|local| {
        *local.borrow_mut() = Some(Rc::new(LocalShard {
            db: RefCell::new(db),
            schema: RefCell::new(schema),
            stats: Cell::new(ProxyStats::default()),
        }))
    });
}

fn local() -> Rc<LocalShard> {
    LOCAL
        .with(|local| local.borrow().clone())
        .expect("cluster::local::init runs at shard start")
}

/// Runs `f` with this shard's database. The borrow ends before `f` returns,
/// so it can never be held across an await.
pub fn with_db<R>(f: impl FnOnce(&mut Database) -> R) -> R {
    let shard = local();
    let mut db = shard.db.borrow_mut();
    f(&mut db)
}

/// Counts a single-partition request by where its data lives.
pub fn count_request(owner_is_local: bool) {
    let shard = local();
    let mut stats = shard.stats.get();
    if owner_is_local {
        stats.local_requests += 1;
    } else {
        stats.forwarded_requests += 1;
    }
    shard.stats.set(stats);
}

/// This shard's coordinator counters.
pub fn proxy_stats() -> ProxyStats {
    local().stats.get()
}

/// This shard's current schema snapshot.
pub fn schema() -> Arc<Schema> {
    local().schema.borrow().clone()
}

/// Replaces this shard's schema snapshot and creates or drops the tables
/// that appeared or disappeared.
pub fn set_schema(new: Arc<Schema>) {
    let shard = local();
    let old = shard.schema.replace(new.clone());
    let mut db = shard.db.borrow_mut();
    for table in new.tables() {
        if old.table_by_id(table.id).is_none() {
            let _ = db.create_table(table.id);
        }
    }
    for table in old.tables() {
        if new.table_by_id(table.id).is_none() {
            let _ = db.drop_table(table.id);
        }
    }
}
