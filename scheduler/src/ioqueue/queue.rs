//! One shard's IO queue at run time: requests wait here for their turn,
//! decided by the [`Dispatcher`], then run on the disk.
//!
//! A request's life:
//! 1. `acquire(class, cost)` queues a ticket and steps the dispatcher. On
//!    an idle disk the ticket is granted at once, without a task switch.
//! 2. Otherwise the caller sleeps until a step grants its ticket. Steps
//!    happen when a request is queued, when one completes, and when a
//!    token wait expires: the shard's timer task (in the Statement group,
//!    so the background groups cannot starve it) sleeps for it. Steps only
//!    ever wake that task, never spawn one, so they are safe in `drop`.
//! 3. The granted [`Permit`] is held while the IO runs; dropping it
//!    records the disk time and steps the dispatcher again.
//!
//! A caller that gives up while queued takes its ticket out uncharged; one
//! that gives up after the grant releases the in-flight capacity.
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::dispatcher::{Dispatcher, Limits, Step};
use super::stats::IoClassStats;
use super::{IoClass, IoShared};
use crate::clock::{monotonic_now, Instant};

/// A queued request's slot.
#[derive(Debug, Default)]
struct Ticket {
    granted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Ticket {
    fn grant(&self) {
        self.granted.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// The token-wait timer task's state.
enum Timer {
    /// Waiting to be asked (with its waker once it has polled).
    Idle(Option<Waker>),
    /// Asked to step again after this many nanoseconds.
    Requested(u64),
    /// Sleeping; it steps when it wakes.
    Sleeping,
}

struct State {
    dispatcher: Dispatcher<Rc<Ticket>>,
    stats: Vec<IoClassStats>,
    timer: Timer,
}

/// The IO queue of the shard running on this thread.
pub(crate) struct ShardQueue {
    shared: &'static IoShared,
    state: RefCell<State>,
}

impl ShardQueue {
    /// The queue of this executor, with its timer task started. Must run
    /// on a glommio executor.
    pub(crate) fn start(shared: &'static IoShared) -> Rc<Self> {
        let config = &shared.config;
        let max_in_flight = u64::try_from(config.latency_goal.as_nanos()).unwrap_or(u64::MAX);
        let queue = Rc::new(ShardQueue {
            shared,
            state: RefCell::new(State {
                dispatcher: Dispatcher::new(
                    &config.shares,
                    &IoClass::ALL.map(IoClass::is_foreground),
                    Limits::for_latency_goal(max_in_flight),
                ),
                stats: IoClass::ALL.iter().map(|c| IoClassStats::new(*c)).collect(),
                timer: Timer::Idle(None),
            }),
        });
        let weak = Rc::downgrade(&queue);
        crate::groups::spawn_detached_in(crate::groups::Group::Statement, run_timer(weak));
        queue
    }

    /// The disk-time cost of a request, nanoseconds.
    pub(crate) fn cost_ns(&self, kind: super::IoKind, bytes: u64) -> u64 {
        self.shared.config.disk.cost_ns(kind, bytes)
    }

    /// Waits for the disk to take a request of `class` and `cost`.
    pub(crate) fn acquire(self: &Rc<Self>, class: IoClass, cost: u64) -> Acquire {
        let ticket = Rc::new(Ticket::default());
        self.state
            .borrow_mut()
            .dispatcher
            .fair_mut()
            .push(class.index(), cost, ticket.clone());
        self.pump();
        Acquire {
            queue: self.clone(),
            ticket: Some(ticket),
            class,
            cost,
            queued_at: monotonic_now(),
        }
    }

    /// A permit granted without queueing (scheduling turned off): the
    /// request is counted as in flight and in the stats, never waits.
    pub(crate) fn bypass(self: &Rc<Self>, class: IoClass, cost: u64) -> Permit {
        let mut state = self.state.borrow_mut();
        state.dispatcher.start_unscheduled(class.index(), cost);
        state.stats[class.index()].in_flight += 1;
        state.stats[class.index()].queued_time.observe(0);
        drop(state);
        Permit {
            queue: self.clone(),
            class,
            cost,
            bytes: 0,
            started: monotonic_now(),
        }
    }

    /// Changes a class's shares.
    pub(crate) fn set_shares(self: &Rc<Self>, class: IoClass, shares: u32) {
        let mut state = self.state.borrow_mut();
        state
            .dispatcher
            .fair_mut()
            .set_shares(class.index(), shares);
        drop(state);
        self.pump();
    }

    /// A snapshot of every class's counters.
    pub(crate) fn stats(&self) -> Vec<IoClassStats> {
        let state = self.state.borrow();
        let fair = state.dispatcher.fair();
        state
            .stats
            .iter()
            .map(|stats| {
                let mut stats = stats.clone();
                stats.shares = fair.shares(stats.class.index());
                stats.queue_length = fair.class_len(stats.class.index()) as u64;
                stats
            })
            .collect()
    }

    /// Dispatches whatever the disk can take now.
    fn pump(self: &Rc<Self>) {
        let now_ns = self.shared.now_ns();
        loop {
            let mut state = self.state.borrow_mut();
            match state.dispatcher.step(&self.shared.bucket, now_ns) {
                Step::Dispatch(dispatched) => {
                    state.stats[dispatched.class].in_flight += 1;
                    drop(state);
                    dispatched.item.grant();
                }
                Step::WaitTokens(ns) => {
                    state.timer = match std::mem::replace(&mut state.timer, Timer::Sleeping) {
                        Timer::Idle(waker) => {
                            if let Some(waker) = waker {
                                waker.wake();
                            }
                            Timer::Requested(ns)
                        }
                        Timer::Requested(asked) => Timer::Requested(asked.min(ns)),
                        // It steps when it wakes, and asks again if need be.
                        Timer::Sleeping => Timer::Sleeping,
                    };
                    return;
                }
                Step::Full | Step::Idle => return,
            }
        }
    }

    fn complete(self: &Rc<Self>, class: IoClass, cost: u64, bytes: u64, started: Option<Instant>) {
        let mut state = self.state.borrow_mut();
        state.dispatcher.complete(class.index(), cost);
        let stats = &mut state.stats[class.index()];
        stats.in_flight = stats.in_flight.saturating_sub(1);
        if let Some(started) = started {
            stats.ops += 1;
            stats.bytes += bytes;
            stats.cost_ns += cost;
            let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            stats.disk_time.observe(elapsed);
        }
        drop(state);
        self.pump();
    }
}

/// The shard's token-wait timer: sleeps when a step asks, then steps.
/// Ends when the queue is gone.
async fn run_timer(queue: Weak<ShardQueue>) {
    loop {
        let asked = std::future::poll_fn(|cx| {
            let Some(queue) = queue.upgrade() else {
                return Poll::Ready(None);
            };
            let mut state = queue.state.borrow_mut();
            match state.timer {
                Timer::Requested(ns) => {
                    state.timer = Timer::Sleeping;
                    Poll::Ready(Some(ns))
                }
                _ => {
                    state.timer = Timer::Idle(Some(cx.waker().clone()));
                    Poll::Pending
                }
            }
        })
        .await;
        let Some(ns) = asked else {
            return;
        };
        crate::sleep(Duration::from_nanos(ns)).await;
        let Some(queue) = queue.upgrade() else {
            return;
        };
        queue.state.borrow_mut().timer = Timer::Idle(None);
        queue.pump();
    }
}

/// Waiting for a grant; resolves to the [`Permit`] to run the IO under.
pub(crate) struct Acquire {
    queue: Rc<ShardQueue>,
    ticket: Option<Rc<Ticket>>,
    class: IoClass,
    cost: u64,
    queued_at: Instant,
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let ticket = self.ticket.as_ref().expect("polled after completion");
        if !ticket.granted.get() {
            *ticket.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        self.ticket = None;
        let queued = u64::try_from(self.queued_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.queue.state.borrow_mut().stats[self.class.index()]
            .queued_time
            .observe(queued);
        Poll::Ready(Permit {
            queue: self.queue.clone(),
            class: self.class,
            cost: self.cost,
            bytes: 0,
            started: monotonic_now(),
        })
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        if ticket.granted.get() {
            // Granted but never run: give the capacity back.
            self.queue.complete(self.class, self.cost, 0, None);
            return;
        }
        let removed = self
            .queue
            .state
            .borrow_mut()
            .dispatcher
            .fair_mut()
            .remove_where(self.class.index(), |queued| Rc::ptr_eq(queued, &ticket));
        assert!(removed.is_some(), "an ungranted ticket is queued");
    }
}

/// The right to run one IO; dropping it marks the IO complete.
pub(crate) struct Permit {
    queue: Rc<ShardQueue>,
    class: IoClass,
    cost: u64,
    bytes: u64,
    started: Instant,
}

impl Permit {
    /// Records the bytes the IO moved.
    pub(crate) fn set_bytes(&mut self, bytes: u64) {
        self.bytes = bytes;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.queue
            .complete(self.class, self.cost, self.bytes, Some(self.started));
    }
}
