//! The fair queue's core: per-class FIFOs dispatched by accumulated,
//! share-normalized cost. Pure data, no IO and no clock, so its fairness
//! properties are tested directly (see the tests below).
//!
//! Why this and not strict priority: strict priority starves background
//! work (compaction that never finishes turns into read amplification);
//! shares give queries most of the disk while compaction still progresses.
//!
//! The algorithm (start-time fair queueing over classes):
//! 1. Each class `c` keeps a virtual time `v_c`: the sum of the costs of
//!    its dispatched requests, each divided by the class's shares at the
//!    time it was dispatched (scaled by [`VTIME_SCALE`] to stay integral).
//! 2. Dispatch takes the head of the backlogged class with the smallest
//!    `v_c` (ties go to the lower class index, i.e. to queries), records
//!    that `v_c` as the queue's virtual clock, then charges the class.
//! 3. A class that becomes backlogged after being idle starts at
//!    `max(v_c, clock)`: it cannot bank the capacity it did not use while
//!    idle, and it is never behind the classes that are backlogged now, so
//!    it is served next (within one dispatch) and then shares fairly.
use std::collections::VecDeque;

/// Normalized cost is `cost * VTIME_SCALE / shares`, so that shares up to
/// this value still charge at least one unit per nanosecond of cost.
pub const VTIME_SCALE: u128 = 1 << 16;

/// One queued request as the fair queue sees it.
#[derive(Debug)]
struct Queued<T> {
    cost: u64,
    item: T,
}

#[derive(Debug)]
struct ClassQueue<T> {
    shares: u32,
    vtime: u128,
    queue: VecDeque<Queued<T>>,
}

/// A request taken off the queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Dispatched<T> {
    pub class: usize,
    pub cost: u64,
    pub item: T,
}

/// Per-class FIFOs dispatched in proportion to the classes' shares.
#[derive(Debug)]
pub struct FairQueue<T> {
    classes: Vec<ClassQueue<T>>,
    clock: u128,
    len: usize,
}

impl<T> FairQueue<T> {
    /// A queue with one class per entry of `shares` (a share of 0 counts as 1).
    pub fn new(shares: &[u32]) -> Self {
        let classes = shares
            .iter()
            .map(|&shares| ClassQueue {
                shares: shares.max(1),
                vtime: 0,
                queue: VecDeque::new(),
            })
            .collect();
        FairQueue {
            classes,
            clock: 0,
            len: 0,
        }
    }

    /// Number of classes.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// Queues `item` of `cost` in `class`.
    pub fn push(&mut self, class: usize, cost: u64, item: T) {
        assert!(class < self.classes.len(), "unknown IO class {class}");
        let clock = self.clock;
        let state = &mut self.classes[class];
        if state.queue.is_empty() {
            // An idle class does not bank credit.
            state.vtime = state.vtime.max(clock);
        }
        state.queue.push_back(Queued { cost, item });
        self.len += 1;
    }

    /// The class and cost of the request [`pop`](Self::pop) would return.
    pub fn peek(&self) -> Option<(usize, u64)> {
        let class = self.next_class()?;
        let head = self.classes[class].queue.front()?;
        Some((class, head.cost))
    }

    /// Takes the next request by fairness and charges its class.
    pub fn pop(&mut self) -> Option<Dispatched<T>> {
        let class = self.next_class()?;
        let state = &mut self.classes[class];
        let Queued { cost, item } = state.queue.pop_front()?;
        self.clock = self.clock.max(state.vtime);
        state.vtime += u128::from(cost) * VTIME_SCALE / u128::from(state.shares);
        self.len -= 1;
        Some(Dispatched { class, cost, item })
    }

    /// Changes a class's shares; requests dispatched from now on are
    /// charged at the new rate.
    pub fn set_shares(&mut self, class: usize, shares: u32) {
        self.classes[class].shares = shares.max(1);
    }

    /// A class's shares.
    pub fn shares(&self, class: usize) -> u32 {
        self.classes[class].shares
    }

    /// Requests queued in `class`.
    pub fn class_len(&self, class: usize) -> usize {
        self.classes[class].queue.len()
    }

    /// Requests queued in all classes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes the first queued item of `class` matching `pred` (a request
    /// whose waiter went away); it was never dispatched, so nothing is charged.
    pub fn remove_where(&mut self, class: usize, pred: impl Fn(&T) -> bool) -> Option<T> {
        let queue = &mut self.classes[class].queue;
        let index = queue.iter().position(|queued| pred(&queued.item))?;
        let removed = queue.remove(index)?;
        self.len -= 1;
        Some(removed.item)
    }

    fn next_class(&self) -> Option<usize> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, state)| !state.queue.is_empty())
            .min_by_key(|(index, state)| (state.vtime, *index))
            .map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Dispatches `rounds` requests from always-backlogged classes and
    /// returns the cost each class got.
    fn backlogged_run(shares: &[u32], costs: &[u64], rounds: usize) -> Vec<u64> {
        let mut queue = FairQueue::new(shares);
        for (class, cost) in costs.iter().enumerate() {
            queue.push(class, *cost, ());
        }
        let mut got = vec![0u64; shares.len()];
        for _ in 0..rounds {
            let dispatched = queue.pop().expect("classes stay backlogged");
            got[dispatched.class] += dispatched.cost;
            queue.push(dispatched.class, costs[dispatched.class], ());
        }
        got
    }

    #[test]
    fn equal_shares_alternate() {
        let got = backlogged_run(&[100, 100], &[10, 10], 10);
        assert_eq!(got, vec![50, 50]);
    }

    #[test]
    fn an_idle_class_does_not_bank_credit() {
        let mut queue = FairQueue::new(&[100, 100]);
        // Class 1 runs alone for a long time.
        for _ in 0..1000 {
            queue.push(1, 10, 1);
            assert_eq!(queue.pop().map(|d| d.class), Some(1));
        }
        // Class 0 wakes up: it is served first, then the two share evenly
        // (class 1 is one request ahead at most), instead of class 0
        // taking 1000 requests in a row.
        for _ in 0..10 {
            queue.push(0, 10, 0);
            queue.push(1, 10, 1);
        }
        let order: Vec<usize> = (0..10)
            .filter_map(|_| queue.pop())
            .map(|d| d.class)
            .collect();
        assert_eq!(order[0], 0);
        let class_0 = order.iter().filter(|class| **class == 0).count();
        assert!((5..=6).contains(&class_0), "{order:?}");
    }

    #[test]
    fn a_new_query_goes_next() {
        let mut queue = FairQueue::new(&[1000, 1, 1]);
        for _ in 0..100 {
            queue.push(1, 1_000_000, 1);
            queue.push(2, 1_000_000, 2);
        }
        for _ in 0..10 {
            queue.pop();
        }
        queue.push(0, 50_000, 0);
        assert_eq!(queue.peek(), Some((0, 50_000)));
        assert_eq!(queue.pop().map(|d| d.item), Some(0));
    }

    #[test]
    fn removed_requests_are_not_charged() {
        let mut queue = FairQueue::new(&[1, 1]);
        queue.push(0, 10, 'a');
        queue.push(0, 10, 'b');
        assert_eq!(queue.remove_where(0, |item| *item == 'a'), Some('a'));
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.class_len(0), 1);
        assert_eq!(queue.pop().map(|d| d.item), Some('b'));
        assert!(queue.is_empty() && queue.pop().is_none());
    }

    proptest! {
        /// With every class backlogged, each class's dispatched cost
        /// converges to its share of the total, whatever its request sizes.
        #[test]
        fn backlogged_costs_follow_shares(
            shares in prop::collection::vec(1u32..2000, 2..6),
            cost_seed in prop::collection::vec(1u64..200_000, 6),
        ) {
            let costs: Vec<u64> = cost_seed[..shares.len()].to_vec();
            let rounds = 20_000;
            let got = backlogged_run(&shares, &costs, rounds);
            let total: u64 = got.iter().sum();
            let share_total: u64 = shares.iter().map(|s| u64::from(*s)).sum();
            let max_cost = *costs.iter().max().expect("classes");
            for (class, cost) in got.iter().enumerate() {
                let expected = total as f64 * f64::from(shares[class]) / share_total as f64;
                // Off by at most about one request of every class, plus
                // rounding: a fixed bound, independent of the run length.
                let slack = (shares.len() as f64 + 1.0) * max_cost as f64
                    * (share_total as f64 / f64::from(shares[class])).min(8.0)
                    + total as f64 * 0.01;
                prop_assert!(
                    (*cost as f64 - expected).abs() <= slack,
                    "class {} got {} expected {} (shares {:?}, costs {:?})",
                    class, cost, expected, shares, costs
                );
            }
        }

        /// Capacity an idle class leaves goes to the backlogged classes in
        /// proportion to their shares: nothing is wasted on the idle one.
        #[test]
        fn idle_capacity_goes_to_the_others(
            shares in prop::collection::vec(1u32..2000, 3..6),
            idle in 0usize..3,
        ) {
            let mut queue = FairQueue::new(&shares);
            for class in (0..shares.len()).filter(|c| *c != idle) {
                queue.push(class, 1000, ());
            }
            let mut got = vec![0u64; shares.len()];
            for _ in 0..10_000 {
                let dispatched = queue.pop().expect("backlogged");
                got[dispatched.class] += dispatched.cost;
                queue.push(dispatched.class, 1000, ());
            }
            prop_assert_eq!(got[idle], 0);
            let active_shares: u64 = (0..shares.len())
                .filter(|c| *c != idle)
                .map(|c| u64::from(shares[c]))
                .sum();
            let total: u64 = got.iter().sum();
            for class in (0..shares.len()).filter(|c| *c != idle) {
                let expected = total as f64 * f64::from(shares[class]) / active_shares as f64;
                prop_assert!((got[class] as f64 - expected).abs() <= 1000.0 * (shares.len() as f64 + 1.0),
                    "class {} got {} expected {}", class, got[class], expected);
            }
        }

        /// A query arriving at any point behind backlogged background
        /// classes is the next request dispatched.
        #[test]
        fn an_arriving_query_is_next(
            shares in prop::collection::vec(1u32..2000, 3..6),
            warmup in 0usize..500,
            query_cost in 1u64..1_000_000,
        ) {
            let mut queue = FairQueue::new(&shares);
            for class in 1..shares.len() {
                for _ in 0..600 {
                    queue.push(class, 100_000, class);
                }
            }
            for _ in 0..warmup {
                queue.pop();
            }
            queue.push(0, query_cost, 0);
            prop_assert_eq!(queue.pop().map(|d| d.item), Some(0));
        }
    }
}
