//! The appenders (and `sync` callers) waiting for their entry to be written
//! or durable, and the future they wait with.
//!
//! Why not a reply channel per waiter: in batch mode every append waits, so
//! a channel allocated per append and one message per waiter sat on the
//! critical path of every group commit (64 of them per fdatasync in the
//! bench). A waiter here is a parked [`Waker`] in a queue ordered by entry
//! sequence number: the writer, after a write or sync completed, pops the
//! front while it is reached and wakes those tasks in log order, and each
//! woken future reads its answer from the commitlog's state. Nothing is
//! allocated per wait once the queues have grown to the number of waiters.
//!
//! The answer a waiter gets is the one the first event after it parked
//! decides, as a reply sent at that event would be:
//! 1. its entry reached (written, or durable): `Ok`;
//! 2. the log was poisoned before that: `Poisoned`;
//! 3. the writer stopped (closed) before either: `Closed`.
//!
//! Every state change that decides an answer (`write_completed`,
//! `sync_completed`, `poison`, the writer's end) wakes the waiters it
//! decides in the same borrow of the state, so a woken future never finds
//! itself still parked.
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::{CommitlogError, Inner};

/// One parked waiter: its entry, a token unique in this commitlog, and the
/// waker of its task.
struct Parked {
    seq: u64,
    token: u64,
    waker: Waker,
}

impl Parked {
    fn key(&self) -> (u64, u64) {
        (self.seq, self.token)
    }
}

/// The parked waiters, ordered by `(seq, token)` in each queue.
#[derive(Default)]
pub(super) struct WaiterQueue {
    next_token: u64,
    /// Waiting for their entry's write to complete.
    written: VecDeque<Parked>,
    /// Waiting for their entry to be durable.
    durable: VecDeque<Parked>,
}

impl WaiterQueue {
    fn queue(&mut self, durable: bool) -> &mut VecDeque<Parked> {
        if durable {
            &mut self.durable
        } else {
            &mut self.written
        }
    }

    /// Parks `waker` until entry `seq` is reached; returns its token.
    pub fn park(&mut self, durable: bool, seq: u64, waker: Waker) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        let queue = self.queue(durable);
        let parked = Parked { seq, token, waker };
        // Appends park in sequence order: the back is the usual place.
        if queue.back().is_none_or(|last| last.key() <= parked.key()) {
            queue.push_back(parked);
        } else {
            let at = queue.partition_point(|other| other.key() <= parked.key());
            queue.insert(at, parked);
        }
        token
    }

    fn position(&mut self, durable: bool, seq: u64, token: u64) -> Option<usize> {
        let queue = self.queue(durable);
        let at = queue.partition_point(|other| other.key() < (seq, token));
        (queue.get(at).is_some_and(|other| other.token == token)).then_some(at)
    }

    /// A parked future was polled again (woken by something else): keeps
    /// the waker of its latest poll.
    pub fn repark(&mut self, durable: bool, seq: u64, token: u64, waker: &Waker) {
        if let Some(at) = self.position(durable, seq, token) {
            let parked = &mut self.queue(durable)[at];
            if !parked.waker.will_wake(waker) {
                parked.waker = waker.clone();
            }
        }
    }

    /// A parked future was dropped (its append cancelled): forgets it.
    pub fn unpark(&mut self, durable: bool, seq: u64, token: u64) {
        if let Some(at) = self.position(durable, seq, token) {
            self.queue(durable).remove(at);
        }
    }

    /// Wakes, in entry order, the waiters of entries up to `reached`.
    pub fn wake_reached(&mut self, durable: bool, reached: u64) {
        let queue = self.queue(durable);
        while queue.front().is_some_and(|parked| parked.seq <= reached) {
            let parked = queue.pop_front().expect("checked");
            parked.waker.wake();
        }
    }

    /// Wakes every waiter (poisoned or closed).
    pub fn wake_all(&mut self) {
        self.wake_reached(false, u64::MAX);
        self.wake_reached(true, u64::MAX);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.durable.is_empty()
    }

    /// The entries waited for, durable ones last (tests).
    #[cfg(test)]
    pub fn seqs(&self) -> Vec<u64> {
        let seqs = self.written.iter().chain(&self.durable);
        seqs.map(|parked| parked.seq).collect()
    }
}

/// Resolves once entry `seq` is written (or durable), or the log failed
/// or closed first. See the module docs for the answer.
pub(super) struct WaitFor<'a> {
    inner: &'a Inner,
    seq: u64,
    durable: bool,
    /// The token while parked.
    parked: Option<u64>,
}

impl<'a> WaitFor<'a> {
    pub fn new(inner: &'a Inner, seq: u64, durable: bool) -> Self {
        WaitFor {
            inner,
            seq,
            durable,
            parked: None,
        }
    }
}

impl Future for WaitFor<'_> {
    type Output = Result<(), CommitlogError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.inner.state.borrow_mut();
        let answer = match this.parked {
            None => state.answer_now(this.seq, this.durable),
            Some(_) => state.answer_parked(this.seq, this.durable),
        };
        if let Some(answer) = answer {
            // Whatever decided the answer unparked us (module docs).
            this.parked = None;
            return Poll::Ready(answer);
        }
        match this.parked {
            Some(token) => state
                .waiters
                .repark(this.durable, this.seq, token, cx.waker()),
            None => {
                let token = state
                    .waiters
                    .park(this.durable, this.seq, cx.waker().clone());
                this.parked = Some(token);
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitFor<'_> {
    fn drop(&mut self) {
        let Some(token) = self.parked else {
            return;
        };
        // Dropped while the state is borrowed (only while it wakes tasks):
        // the entry is being woken or will be, which is harmless.
        if let Ok(mut state) = self.inner.state.try_borrow_mut() {
            state.waiters.unpark(self.durable, self.seq, token);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    use super::*;

    /// A waker that records its name when woken.
    struct Recorder {
        name: u64,
        woken: Arc<Mutex<Vec<u64>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.woken.lock().expect("not poisoned").push(self.name);
        }
    }

    fn recorder(name: u64, woken: &Arc<Mutex<Vec<u64>>>) -> Waker {
        Waker::from(Arc::new(Recorder {
            name,
            woken: woken.clone(),
        }))
    }

    #[test]
    fn waiters_wake_in_entry_order_up_to_the_entry_reached() {
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut queue = WaiterQueue::default();
        for seq in [5, 2, 7, 3, 2] {
            queue.park(true, seq, recorder(seq, &woken));
        }
        queue.park(false, 1, recorder(100, &woken));
        queue.wake_reached(true, 4);
        assert_eq!(*woken.lock().unwrap(), [2, 2, 3]);
        assert_eq!(queue.seqs(), [1, 5, 7]);
        queue.wake_reached(false, 4);
        queue.wake_reached(true, 6);
        assert_eq!(*woken.lock().unwrap(), [2, 2, 3, 100, 5]);
        queue.wake_all();
        assert_eq!(*woken.lock().unwrap(), [2, 2, 3, 100, 5, 7]);
        assert!(queue.is_empty());
    }

    #[test]
    fn an_unparked_waiter_is_neither_kept_nor_woken() {
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut queue = WaiterQueue::default();
        let first = queue.park(true, 3, recorder(1, &woken));
        let second = queue.park(true, 3, recorder(2, &woken));
        queue.park(true, 4, recorder(3, &woken));
        queue.unpark(true, 3, second);
        // Unknown tokens (already woken ones) are ignored.
        queue.unpark(true, 3, second);
        queue.unpark(false, 3, first);
        queue.repark(true, 3, first, &recorder(4, &woken));
        assert_eq!(queue.seqs(), [3, 4]);
        queue.wake_all();
        assert_eq!(*woken.lock().unwrap(), [4, 3]);
    }
}
