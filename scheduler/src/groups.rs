//! CPU scheduling groups: on each shard, one glommio task queue per kind
//! of work, with shares, so a long compaction cannot starve request
//! handling on its shard. The group of a task also gives its disk IO a
//! class (see [`Group::io_class`]): storage code never passes a class.
//!
//! A task spawned with [`spawn_in`] runs in that group, and so does every
//! task it spawns with `spawn_local` (glommio spawns into the running
//! task's queue). The groups are created when a shard starts
//! (`run_shards`), or on first use on an executor started elsewhere.
//!
//! Shares are dynamic (glommio re-reads them every
//! [`SHARES_ADJUSTMENT_PERIOD`]), which is how the compaction backlog
//! controller moves the Compaction group.
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use glommio::{Latency, Shares, SharesManager, TaskQueueHandle};

use crate::ioqueue::{IoClass, IoKind};

/// How often glommio re-reads a group's shares.
pub const SHARES_ADJUSTMENT_PERIOD: Duration = Duration::from_millis(100);

/// A CPU scheduling group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Client requests: connections, statement execution.
    Statement,
    /// The commitlog's writer.
    Commitlog,
    /// Memtable flushes.
    Flush,
    /// Compaction.
    Compaction,
    /// Streaming.
    Streaming,
    /// Other background work.
    Maintenance,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 6] = [
        Group::Statement,
        Group::Commitlog,
        Group::Flush,
        Group::Compaction,
        Group::Streaming,
        Group::Maintenance,
    ];

    /// The group's name (also its glommio task queue's name).
    pub fn name(self) -> &'static str {
        match self {
            Group::Statement => "statement",
            Group::Commitlog => "commitlog",
            Group::Flush => "flush",
            Group::Compaction => "compaction",
            Group::Streaming => "streaming",
            Group::Maintenance => "maintenance",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The CPU shares a group starts with.
    pub fn default_shares(self) -> usize {
        match self {
            Group::Statement | Group::Commitlog => 1000,
            Group::Flush => 400,
            Group::Compaction | Group::Streaming => 200,
            Group::Maintenance => 100,
        }
    }

    /// The IO class of an IO of `kind` issued by a task of this group.
    /// Statements read as queries; the only writes they issue are
    /// commitlog appends and syncs (flush and compaction have their own
    /// groups), so those are commitlog-class.
    pub fn io_class(self, kind: IoKind) -> IoClass {
        match (self, kind) {
            (Group::Statement, IoKind::Read) => IoClass::Query,
            (Group::Statement | Group::Commitlog, _) => IoClass::Commitlog,
            (Group::Flush, _) => IoClass::Flush,
            (Group::Compaction, _) => IoClass::Compaction,
            (Group::Streaming, _) => IoClass::Streaming,
            (Group::Maintenance, _) => IoClass::Maintenance,
        }
    }
}

/// A group's current shares, read by glommio.
#[derive(Debug)]
struct GroupShares(Cell<usize>);

impl SharesManager for GroupShares {
    fn shares(&self) -> usize {
        self.0.get()
    }

    fn adjustment_period(&self) -> Duration {
        SHARES_ADJUSTMENT_PERIOD
    }
}

struct GroupSet {
    /// The executor the task queues belong to: a thread may run several
    /// executors one after the other (tests do), and handles of a finished
    /// one mean nothing to the next.
    executor_id: usize,
    handles: [TaskQueueHandle; Group::ALL.len()],
    shares: [Rc<GroupShares>; Group::ALL.len()],
}

impl GroupSet {
    fn create(executor_id: usize) -> Self {
        let shares =
            Group::ALL.map(|group| Rc::new(GroupShares(Cell::new(group.default_shares()))));
        let handles = Group::ALL.map(|group| {
            let manager: Rc<dyn SharesManager> = shares[group.index()].clone();
            glommio::executor().create_task_queue(
                Shares::Dynamic(manager),
                Latency::NotImportant,
                group.name(),
            )
        });
        GroupSet {
            executor_id,
            handles,
            shares,
        }
    }
}

thread_local! {
    static GROUPS: RefCell<Option<Rc<GroupSet>>> = const { RefCell::new(None) };
}

/// This executor's groups, if created.
fn existing_groups() -> Option<Rc<GroupSet>> {
    let executor_id = glommio::executor().id();
    GROUPS.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|groups| groups.executor_id == executor_id)
            .cloned()
    })
}

fn with_groups<R>(f: impl FnOnce(&GroupSet) -> R) -> R {
    let groups = existing_groups().unwrap_or_else(|| {
        let created = Rc::new(GroupSet::create(glommio::executor().id()));
        GROUPS.with(|cell| *cell.borrow_mut() = Some(created.clone()));
        created
    });
    f(&groups)
}

/// Creates this shard's groups if they do not exist yet. Must run on a
/// glommio executor.
pub fn init_shard() {
    with_groups(|_| ());
}

/// Spawns `future` on this shard in `group`; dropping the returned task
/// cancels it.
pub fn spawn_in<T: 'static>(
    group: Group,
    future: impl Future<Output = T> + 'static,
) -> glommio::Task<T> {
    let handle = with_groups(|groups| groups.handles[group.index()]);
    glommio::spawn_local_into(future, handle).expect("the shard's group task queues exist")
}

/// Spawns `future` on this shard in `group`, in the background.
pub fn spawn_detached_in(group: Group, future: impl Future<Output = ()> + 'static) {
    spawn_in(group, future).detach();
}

/// The group of the running task, or `None` outside every group (the
/// shard's default task queue).
pub fn current_group() -> Option<Group> {
    let current = glommio::executor().current_task_queue();
    let groups = existing_groups()?;
    let index = groups
        .handles
        .iter()
        .position(|handle| *handle == current)?;
    Some(Group::ALL[index])
}

/// Sets a group's CPU shares on this shard (applied within
/// [`SHARES_ADJUSTMENT_PERIOD`]).
pub fn set_group_shares(group: Group, shares: usize) {
    with_groups(|groups| groups.shares[group.index()].0.set(shares.max(1)));
}

/// A group's CPU shares on this shard.
pub fn group_shares(group: Group) -> usize {
    with_groups(|groups| groups.shares[group.index()].0.get())
}
