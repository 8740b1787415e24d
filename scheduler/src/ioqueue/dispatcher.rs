//! The dispatch decision of one shard's IO queue, without IO or a clock:
//! the fair queue picks which request goes next, the shared token bucket
//! says when the disk can take it, and an in-flight cap bounds how much of
//! it the disk holds at once. The shard's queue (`queue.rs`) calls
//! [`Dispatcher::step`] and acts on the answer; tests call it with a
//! simulated clock.
//!
//! One step:
//! 1. Nothing queued: idle.
//! 2. In flight already `max_in_flight_cost` or more of disk time (and at
//!    least one request): full; a completion steps again.
//! 3. Make sure the head's cost is reserved in the bucket. A reservation is
//!    an amount of tokens taken for whichever request is at the head when
//!    they become ready, not for a particular request: a query arriving
//!    while the shard waits for tokens taken for a compaction write goes
//!    first on those tokens. So a query waits at most for one reservation
//!    (one dispatch quantum: the cost of one request), never for a line.
//! 4. Tokens not ready: wait that many nanoseconds.
//! 5. Otherwise dispatch the head; what is left of the reservation stays
//!    ready for the next request.
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

/// One shard's dispatcher state.
#[derive(Debug)]
pub struct Dispatcher<T> {
    fair: FairQueue<T>,
    max_in_flight_cost: u64,
    in_flight_cost: u64,
    in_flight_ops: u64,
    reservation: Option<Reservation>,
}

impl<T> Dispatcher<T> {
    /// A dispatcher over classes with `shares`, keeping at most
    /// `max_in_flight_cost` nanoseconds of disk time in flight.
    pub fn new(shares: &[u32], max_in_flight_cost: u64) -> Self {
        Dispatcher {
            fair: FairQueue::new(shares),
            max_in_flight_cost,
            in_flight_cost: 0,
            in_flight_ops: 0,
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
        let Some((_, head_cost)) = self.fair.peek() else {
            return Step::Idle;
        };
        if self.in_flight_ops > 0
            && self.in_flight_cost.saturating_add(head_cost) > self.max_in_flight_cost
        {
            return Step::Full;
        }
        let reservation = self.reserve(bucket, head_cost);
        bucket.replenish(now_ns);
        let missing = bucket.deficiency(reservation.position);
        if missing > 0 {
            return Step::WaitTokens(missing);
        }
        let dispatched = self.fair.pop().expect("peeked a request");
        let left = reservation.tokens - dispatched.cost;
        self.reservation = (left > 0).then_some(Reservation {
            tokens: left,
            position: reservation.position,
        });
        self.in_flight_cost += dispatched.cost;
        self.in_flight_ops += 1;
        Step::Dispatch(dispatched)
    }

    /// Records a request sent to the disk around the queue (scheduling
    /// off), so its completion balances.
    pub fn start_unscheduled(&mut self, cost: u64) {
        self.in_flight_cost += cost;
        self.in_flight_ops += 1;
    }

    /// Records that a dispatched request of `cost` finished (or was dropped).
    pub fn complete(&mut self, cost: u64) {
        assert!(
            self.in_flight_ops > 0,
            "completion without a request in flight"
        );
        self.in_flight_ops -= 1;
        self.in_flight_cost = self.in_flight_cost.saturating_sub(cost);
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
        /// (completion time, cost)
        in_flight: Vec<(u64, u64)>,
        dispatched: Vec<(usize, u64, u64)>,
    }

    impl Sim {
        fn new(shares: &[u32], max_in_flight: u64, burst: u64) -> Self {
            Sim {
                dispatcher: Dispatcher::new(shares, max_in_flight),
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
                            self.in_flight.push((self.now_ns + d.cost, d.cost));
                            self.dispatched.push((d.class, d.item, self.now_ns));
                        }
                        Step::WaitTokens(ns) => {
                            wake_at = wake_at.min(self.now_ns + ns);
                            break;
                        }
                        Step::Full | Step::Idle => break,
                    }
                }
                if let Some(done) = self.in_flight.iter().map(|(at, _)| *at).min() {
                    wake_at = wake_at.min(done);
                }
                self.now_ns = wake_at.max(self.now_ns + 1);
                let now = self.now_ns;
                let finished: Vec<u64> = self
                    .in_flight
                    .iter()
                    .filter(|(at, _)| *at <= now)
                    .map(|(_, cost)| *cost)
                    .collect();
                self.in_flight.retain(|(at, _)| *at > now);
                for cost in finished {
                    self.dispatcher.complete(cost);
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

        /// Under a rate-limited disk the dispatched cost still follows shares.
        #[test]
        fn shares_hold_under_the_rate_limit(
            query_shares in 100u32..1000,
            compaction_shares in 100u32..1000,
        ) {
            let mut sim = Sim::new(&[query_shares, compaction_shares], 1_000_000, 100_000);
            for id in 0..20_000 {
                sim.dispatcher.fair_mut().push(QUERY, 10_000, id);
                sim.dispatcher.fair_mut().push(COMPACTION, 50_000, id);
            }
            sim.run_until(200_000_000);
            let cost_of = |class: usize, cost: u64| {
                sim.dispatched.iter().filter(|(c, _, _)| *c == class).count() as f64 * cost as f64
            };
            let ratio = cost_of(QUERY, 10_000) / cost_of(COMPACTION, 50_000);
            let expected = f64::from(query_shares) / f64::from(compaction_shares);
            prop_assert!((ratio / expected - 1.0).abs() < 0.05, "ratio {} expected {}", ratio, expected);
        }
    }
}
