//! The dispatch decision of one shard's IO queue, without IO or a clock:
//! the fair queue picks which request goes next, the shared token bucket
//! says when the disk can take it, and an in-flight cap bounds how much of
//! it the disk holds at once. The shard's queue (`queue.rs`) calls
//! [`Dispatcher::step`] and acts on the answer; tests call it with a
//! simulated clock.
//!
//! Classes are foreground (queries, commitlog: a client waits on them) or
//! background (flush, compaction, streaming, maintenance), and
//! [`Limits`] treats them differently so that a foreground request is
//! neither held in the queue nor queued deep in the disk behind
//! background work:
//! - background requests fill the disk only up to
//!   `background_in_flight_cost`, which leaves the rest of
//!   `max_in_flight_cost` for the foreground: a query arriving behind a
//!   compaction finds room at once instead of waiting for a completion;
//! - a foreground request may go while its tokens are up to
//!   `foreground_token_debt` nanoseconds short (the bucket still charges
//!   it, so what it borrows delays what comes after it): it does not wait
//!   for a reservation taken for a large background request to ripen.
//!
//! Neither changes the order: requests still leave in the fair queue's
//! order, so shares hold over any backlogged stretch, and the borrowing is
//! bounded, so the rate over time is still the disk model's.
//!
//! One step:
//! 1. Nothing queued: idle.
//! 2. The head's class already has its in-flight cap of disk time in
//!    flight (and at least one request is in flight): full; a completion
//!    steps again.
//! 3. Make sure the head's cost is reserved in the bucket. A reservation is
//!    an amount of tokens taken for whichever request is at the head when
//!    they become ready, not for a particular request: a query arriving
//!    while the shard waits for tokens taken for a compaction write goes
//!    first on those tokens.
//! 4. Tokens not ready (beyond the debt a foreground head may run up):
//!    wait that many nanoseconds.
//! 5. Otherwise dispatch the head; what is left of the reservation stays
//!    for the next request.
use super::bucket::TokenBucket;
use super::fair::{Dispatched, FairQueue};

/// What the queue should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Start this request now.
    Dispatch(Dispatched<T>),
    /// Step again after this many nanoseconds (tokens are on their way).
    WaitTokens(u64),
    /// The disk holds its fill: step again when a request completes.
    Full,
    /// Nothing is queued.
    Idle,
}

/// Tokens taken from the bucket for the head of the queue.
#[derive(Debug, Clone, Copy)]
struct Reservation {
    tokens: u64,
    position: u64,
}

/// Background requests a shard keeps in flight at most.
pub const BACKGROUND_IN_FLIGHT_OPS: u64 = 2;

/// How much a shard gives the disk, per kind of class (nanoseconds of
/// disk time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Disk time in flight at most (foreground requests fill up to it).
    pub max_in_flight_cost: u64,
    /// Disk time in flight at most while a background request is
    /// dispatched; the rest is kept for foreground requests.
    pub background_in_flight_cost: u64,
    /// Requests in flight at most while a background request is
    /// dispatched, whatever the model says they cost: a disk model that
    /// overstates the disk (a virtual disk measured in its host's cache)
    /// would otherwise let the background fill the disk's own queue.
    pub background_in_flight_ops: u64,
    /// How far a foreground request may run ahead of the bucket.
    pub foreground_token_debt: u64,
}

impl Limits {
    /// The limits for a latency goal: the whole goal in flight, half of it
    /// for the background, and a foreground debt of one goal.
    pub fn for_latency_goal(goal_ns: u64) -> Self {
        Limits {
            max_in_flight_cost: goal_ns,
            background_in_flight_cost: goal_ns / 2,
            background_in_flight_ops: BACKGROUND_IN_FLIGHT_OPS,
            foreground_token_debt: goal_ns,
        }
    }

    /// The same cap for every class and no debt: the fair queue and the
    /// bucket alone decide.
    pub fn uniform(max_in_flight_cost: u64) -> Self {
        Limits {
            max_in_flight_cost,
            background_in_flight_cost: max_in_flight_cost,
            background_in_flight_ops: u64::MAX,
            foreground_token_debt: 0,
        }
    }
}

/// One shard's dispatcher state.
#[derive(Debug)]
pub struct Dispatcher<T> {
    fair: FairQueue<T>,
    limits: Limits,
    /// Per class: whether a client waits on its requests.
    foreground: Vec<bool>,
    in_flight_cost: u64,
    in_flight_ops: u64,
    /// The background's part of the two above.
    background_cost: u64,
    background_ops: u64,
    reservation: Option<Reservation>,
}

impl<T> Dispatcher<T> {
    /// A dispatcher over classes with `shares`, of which those marked in
    /// `foreground` (indexed like `shares`; missing entries are background)
    /// get the foreground's limits.
    pub fn new(shares: &[u32], foreground: &[bool], limits: Limits) -> Self {
        Dispatcher {
            fair: FairQueue::new(shares),
            limits,
            foreground: (0..shares.len())
                .map(|class| foreground.get(class).copied().unwrap_or(false))
                .collect(),
            in_flight_cost: 0,
            in_flight_ops: 0,
            background_cost: 0,
            background_ops: 0,
            reservation: None,
        }
    }

    /// The fair queue (lengths, shares).
    pub fn fair(&self) -> &FairQueue<T> {
        &self.fair
    }

    /// The fair queue, to queue, remove or re-share.
    pub fn fair_mut(&mut self) -> &mut FairQueue<T> {
        &mut self.fair
    }

    /// Disk time in flight, nanoseconds.
    pub fn in_flight_cost(&self) -> u64 {
        self.in_flight_cost
    }

    /// Requests in flight.
    pub fn in_flight_ops(&self) -> u64 {
        self.in_flight_ops
    }

    /// Decides the next action at `now_ns` (the bucket's clock).
    pub fn step(&mut self, bucket: &TokenBucket, now_ns: u64) -> Step<T> {
        let Some((head_class, head_cost)) = self.fair.peek() else {
            return Step::Idle;
        };
        let foreground = self.foreground[head_class];
        let whole_full = self.in_flight_ops > 0
            && self.in_flight_cost.saturating_add(head_cost) > self.limits.max_in_flight_cost;
        // The background's own caps count only background requests, so a
        // background head never waits for the foreground to drain below them.
        let background_full = !foreground
            && self.background_ops > 0
            && (self.background_cost.saturating_add(head_cost)
                > self.limits.background_in_flight_cost
                || self.background_ops >= self.limits.background_in_flight_ops);
        if whole_full || background_full {
            return Step::Full;
        }
        let debt = if foreground {
            self.limits.foreground_token_debt
        } else {
            0
        };
        let reservation = self.reserve(bucket, head_cost);
        bucket.replenish(now_ns);
        let missing = bucket.deficiency(reservation.position);
        if missing > debt {
            return Step::WaitTokens(missing - debt);
        }
        let dispatched = self.fair.pop().expect("peeked a request");
        let left = reservation.tokens - dispatched.cost;
        self.reservation = (left > 0).then_some(Reservation {
            tokens: left,
            position: reservation.position,
        });
        self.start(dispatched.class, dispatched.cost);
        Step::Dispatch(dispatched)
    }

    fn start(&mut self, class: usize, cost: u64) {
        self.in_flight_cost += cost;
        self.in_flight_ops += 1;
        if !self.foreground[class] {
            self.background_cost += cost;
            self.background_ops += 1;
        }
    }

    /// Records a request of `class` sent to the disk around the queue
    /// (scheduling off), so its completion balances.
    pub fn start_unscheduled(&mut self, class: usize, cost: u64) {
        self.start(class, cost);
    }

    /// Records that a dispatched request of `class` and `cost` finished
    /// (or was dropped).
    pub fn complete(&mut self, class: usize, cost: u64) {
        assert!(
            self.in_flight_ops > 0,
            "completion without a request in flight"
        );
        self.in_flight_ops -= 1;
        self.in_flight_cost = self.in_flight_cost.saturating_sub(cost);
        if !self.foreground[class] {
            self.background_ops = self.background_ops.saturating_sub(1);
            self.background_cost = self.background_cost.saturating_sub(cost);
        }
    }

    /// Takes enough tokens for a head request of `cost`.
    fn reserve(&mut self, bucket: &TokenBucket, cost: u64) -> Reservation {
        let reservation = match self.reservation {
            Some(held) if held.tokens >= cost => held,
            Some(held) => Reservation {
                tokens: cost,
                position: bucket.grab(cost - held.tokens),
            },
            None => Reservation {
                tokens: cost,
                position: bucket.grab(cost),
            },
        };
        self.reservation = Some(reservation);
        reservation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const QUERY: usize = 0;
    const COMPACTION: usize = 1;

    /// A simulated disk that completes each request `cost` after dispatch.
    struct Sim {
        dispatcher: Dispatcher<u64>,
        bucket: TokenBucket,
        now_ns: u64,
        /// (completion time, class, cost)
        in_flight: Vec<(u64, usize, u64)>,
        dispatched: Vec<(usize, u64, u64)>,
    }

    impl Sim {
        fn new(shares: &[u32], max_in_flight: u64, burst: u64) -> Self {
            Self::with_limits(shares, &[], Limits::uniform(max_in_flight), burst)
        }

        fn with_limits(shares: &[u32], foreground: &[bool], limits: Limits, burst: u64) -> Self {
            Sim {
                dispatcher: Dispatcher::new(shares, foreground, limits),
                bucket: TokenBucket::new(burst),
                now_ns: 0,
                in_flight: Vec::new(),
                dispatched: Vec::new(),
            }
        }

        /// Runs until `until_ns`, dispatching as the dispatcher says.
        fn run_until(&mut self, until_ns: u64) {
            while self.now_ns < until_ns {
                let mut wake_at = until_ns;
                loop {
                    match self.dispatcher.step(&self.bucket, self.now_ns) {
                        Step::Dispatch(d) => {
                            self.in_flight.push((self.now_ns + d.cost, d.class, d.cost));
                            self.dispatched.push((d.class, d.item, self.now_ns));
                        }
                        Step::WaitTokens(ns) => {
                            wake_at = wake_at.min(self.now_ns + ns);
                            break;
                        }
                        Step::Full | Step::Idle => break,
                    }
                }
                if let Some(done) = self.in_flight.iter().map(|(at, _, _)| *at).min() {
                    wake_at = wake_at.min(done);
                }
                self.now_ns = wake_at.max(self.now_ns + 1);
                let now = self.now_ns;
                let finished: Vec<(usize, u64)> = self
                    .in_flight
                    .iter()
                    .filter(|(at, _, _)| *at <= now)
                    .map(|(_, class, cost)| (*class, *cost))
                    .collect();
                self.in_flight.retain(|(at, _, _)| *at > now);
                for (class, cost) in finished {
                    self.dispatcher.complete(class, cost);
                }
            }
        }
    }

    #[test]
    fn the_disk_is_never_charged_faster_than_it_runs() {
        let mut sim = Sim::new(&[100, 100], 1_000_000, 100_000);
        for id in 0..10_000 {
            sim.dispatcher.fair_mut().push(COMPACTION, 100_000, id);
        }
        sim.run_until(100_000_000);
        // 100 ms of disk time in 100 ms, plus the initial burst.
        let charged = sim.dispatched.len() as u64 * 100_000;
        assert!(charged <= 100_000_000 + 100_000 + 100_000, "{charged}");
        assert!(charged >= 99_000_000, "{charged}");
    }

    /// A dispatcher with the foreground limits of a 1.5 ms goal and a full
    /// bucket (only the in-flight caps decide), `count` compaction requests
    /// of `cost` queued and stepped until it stops dispatching; returns how
    /// many it started.
    fn backlogged_compaction(count: u64, cost: u64) -> (Dispatcher<u64>, TokenBucket, u64) {
        let limits = Limits::for_latency_goal(1_500_000);
        let mut dispatcher = Dispatcher::new(&[1000, 200], &[true, false], limits);
        let bucket = TokenBucket::new(100_000_000);
        for id in 0..count {
            dispatcher.fair_mut().push(COMPACTION, cost, id);
        }
        let mut started = 0;
        while let Step::Dispatch(_) = dispatcher.step(&bucket, 0) {
            started += 1;
        }
        (dispatcher, bucket, started)
    }

    /// Keeps queries (10 us) and compaction (50 us) backlogged for 200 ms of
    /// simulated time; returns the dispatched cost ratio query/compaction,
    /// the ratio of their shares, and the total cost charged.
    fn backlogged_share_ratio(
        mut sim: Sim,
        query_shares: u32,
        compaction_shares: u32,
    ) -> (f64, f64, f64) {
        for id in 0..20_000 {
            sim.dispatcher.fair_mut().push(QUERY, 10_000, id);
            sim.dispatcher.fair_mut().push(COMPACTION, 50_000, id);
        }
        sim.run_until(200_000_000);
        let cost_of = |class: usize, cost: u64| {
            sim.dispatched
                .iter()
                .filter(|(c, _, _)| *c == class)
                .count() as f64
                * cost as f64
        };
        let (queries, compactions) = (cost_of(QUERY, 10_000), cost_of(COMPACTION, 50_000));
        let expected = f64::from(query_shares) / f64::from(compaction_shares);
        (queries / compactions, expected, queries + compactions)
    }

    #[test]
    fn background_work_leaves_room_for_the_foreground() {
        let (mut dispatcher, bucket, started) = backlogged_compaction(10, 400_000);
        // Two 0.4 ms writes would pass the background's 0.75 ms.
        assert_eq!(started, 1);
        assert_eq!(dispatcher.in_flight_cost(), 400_000);
        // Queries fill the rest, up to the whole goal.
        for id in 0..10 {
            dispatcher.fair_mut().push(QUERY, 300_000, 100 + id);
        }
        let mut queries = 0;
        while let Step::Dispatch(d) = dispatcher.step(&bucket, 0) {
            assert_eq!(d.class, QUERY);
            queries += 1;
        }
        assert_eq!(queries, 3);
        assert_eq!(dispatcher.in_flight_cost(), 1_300_000);
    }

    #[test]
    fn cheap_background_requests_are_capped_by_count() {
        // A model that thinks the disk takes these in 10 us each.
        let (mut dispatcher, bucket, started) = backlogged_compaction(100, 10_000);
        assert_eq!(started, BACKGROUND_IN_FLIGHT_OPS);
        // Queries still go, and do not count against the background's caps.
        dispatcher.fair_mut().push(QUERY, 10_000, 1000);
        dispatcher.fair_mut().push(QUERY, 10_000, 1001);
        for _ in 0..2 {
            assert!(matches!(dispatcher.step(&bucket, 0), Step::Dispatch(d) if d.class == QUERY));
        }
        assert_eq!(dispatcher.step(&bucket, 0), Step::Full);
        // A background completion lets one more background request in,
        // with the queries still in flight.
        dispatcher.complete(COMPACTION, 10_000);
        assert!(matches!(dispatcher.step(&bucket, 0), Step::Dispatch(d) if d.class == COMPACTION));
        assert_eq!(dispatcher.in_flight_ops(), 4);
    }

    proptest! {
        /// Behind any backlog of compaction requests, a query that arrives
        /// at any moment is dispatched within one dispatch quantum (the
        /// largest request's cost) plus its own cost.
        #[test]
        fn a_query_waits_at_most_one_quantum(
            compaction_cost in 1_000u64..1_000_000,
            query_cost in 1_000u64..100_000,
            arrive_ns in 0u64..50_000_000,
            max_in_flight in 1_000_000u64..3_000_000,
        ) {
            let mut sim = Sim::new(&[1000, 200], max_in_flight, 1_000_000);
            for id in 0..100_000 {
                sim.dispatcher.fair_mut().push(COMPACTION, compaction_cost, id);
            }
            sim.run_until(arrive_ns);
            sim.dispatcher.fair_mut().push(QUERY, query_cost, u64::MAX);
            let arrived = sim.now_ns;
            sim.run_until(arrived + 10 * (compaction_cost + query_cost) + max_in_flight);
            let started = sim
                .dispatched
                .iter()
                .find(|(class, _, _)| *class == QUERY)
                .map(|(_, _, at)| *at);
            let Some(started) = started else {
                return Err(TestCaseError::fail("the query was never dispatched"));
            };
            let quantum = compaction_cost.max(query_cost);
            // The in-flight cap may hold the query until one request
            // completes (one quantum); the tokens, until one reservation
            // is ready (another quantum).
            prop_assert!(
                started - arrived <= 2 * quantum + 1,
                "query waited {} ns, quantum {} ns", started - arrived, quantum
            );
        }

        /// With the foreground's limits, a query arriving behind any
        /// backlog of background requests no larger than the background's
        /// cap goes to the disk at once: there is room in flight for it and
        /// it may borrow the tokens of the reservation ahead of it.
        #[test]
        fn a_foreground_query_goes_at_once(
            compaction_cost in 1_000u64..750_000,
            query_cost in 1_000u64..100_000,
            arrive_ns in 0u64..50_000_000,
        ) {
            let goal = 1_500_000;
            let mut sim = Sim::with_limits(
                &[1000, 200], &[true, false], Limits::for_latency_goal(goal), goal,
            );
            for id in 0..100_000 {
                sim.dispatcher.fair_mut().push(COMPACTION, compaction_cost, id);
            }
            sim.run_until(arrive_ns);
            sim.dispatcher.fair_mut().push(QUERY, query_cost, u64::MAX);
            let arrived = sim.now_ns;
            sim.run_until(arrived + 1);
            let started = sim
                .dispatched
                .iter()
                .find(|(class, _, _)| *class == QUERY)
                .map(|(_, _, at)| *at);
            prop_assert_eq!(started, Some(arrived));
        }

        /// The foreground limits change neither the shares nor the rate.
        #[test]
        fn foreground_limits_keep_shares_and_rate(
            query_shares in 100u32..1000,
            compaction_shares in 100u32..1000,
        ) {
            let goal = 1_000_000;
            let limits = Limits::for_latency_goal(goal);
            let sim = Sim::with_limits(
                &[query_shares, compaction_shares], &[true, false], limits, 100_000,
            );
            let (ratio, expected, charged) =
                backlogged_share_ratio(sim, query_shares, compaction_shares);
            prop_assert!((ratio / expected - 1.0).abs() < 0.05, "ratio {} expected {}", ratio, expected);
            // 200 ms of disk time, plus the burst and the debt.
            prop_assert!(charged <= 200_000_000.0 + 100_000.0 + goal as f64 + 50_000.0, "{}", charged);
        }

        /// Under a rate-limited disk the dispatched cost still follows shares.
        #[test]
        fn shares_hold_under_the_rate_limit(
            query_shares in 100u32..1000,
            compaction_shares in 100u32..1000,
        ) {
            let sim = Sim::new(&[query_shares, compaction_shares], 1_000_000, 100_000);
            let (ratio, expected, _) = backlogged_share_ratio(sim, query_shares, compaction_shares);
            prop_assert!((ratio / expected - 1.0).abs() < 0.05, "ratio {} expected {}", ratio, expected);
        }
    }
}
