//! The compaction backlog controller: maps the bytes compaction still has
//! to do to the shares of the compaction IO class and CPU group.
//!
//! Why: with fixed shares, compaction either falls behind under sustained
//! writes (too few shares: SSTables pile up and reads slow down) or takes
//! more of the disk than it needs when there is little to do (too many:
//! query latency suffers for nothing). Letting the backlog set the shares
//! closes the loop: a growing backlog raises compaction's shares until it
//! keeps up, and they fall back as the backlog drains.
//!
//! The curve is piecewise linear through its points, and flat before the
//! first and after the last.

/// Why a curve was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    #[error("a backlog curve needs at least one point")]
    NoPoints,
    #[error("backlog curve points must have strictly increasing backlogs")]
    Unordered,
}

/// A backlog → shares curve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogController {
    /// `(backlog_bytes, shares)`, backlogs strictly increasing.
    points: Vec<(u64, u32)>,
}

impl Default for BacklogController {
    /// 50 shares with nothing to do, 200 at 256 MiB of backlog, 800 at
    /// 4 GiB, and at most 1000 (a query's shares) from 16 GiB on.
    fn default() -> Self {
        BacklogController {
            points: vec![(0, 50), (256 << 20, 200), (4 << 30, 800), (16 << 30, 1000)],
        }
    }
}

impl BacklogController {
    /// A controller through `points` (`(backlog_bytes, shares)`).
    pub fn new(points: Vec<(u64, u32)>) -> Result<Self, ControllerError> {
        if points.is_empty() {
            return Err(ControllerError::NoPoints);
        }
        if points.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(ControllerError::Unordered);
        }
        Ok(BacklogController { points })
    }

    /// The shares for a backlog of `backlog_bytes` (at least 1).
    pub fn shares_for(&self, backlog_bytes: u64) -> u32 {
        let after = self
            .points
            .partition_point(|(bytes, _)| *bytes <= backlog_bytes);
        let shares = match (after.checked_sub(1), self.points.get(after)) {
            (None, _) => self.points[0].1,
            (Some(last), None) => self.points[last].1,
            (Some(before), Some(&(x1, y1))) => {
                let (x0, y0) = self.points[before];
                let fraction = (backlog_bytes - x0) as f64 / (x1 - x0) as f64;
                (f64::from(y0) + fraction * (f64::from(y1) - f64::from(y0))).round() as u32
            }
        };
        shares.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn interpolates_between_points() {
        let controller = BacklogController::new(vec![(100, 10), (200, 110)]).expect("valid");
        assert_eq!(controller.shares_for(0), 10);
        assert_eq!(controller.shares_for(100), 10);
        assert_eq!(controller.shares_for(150), 60);
        assert_eq!(controller.shares_for(200), 110);
        assert_eq!(controller.shares_for(u64::MAX), 110);
    }

    #[test]
    fn refuses_bad_curves() {
        assert_eq!(
            BacklogController::new(vec![]),
            Err(ControllerError::NoPoints)
        );
        assert_eq!(
            BacklogController::new(vec![(5, 1), (5, 2)]),
            Err(ControllerError::Unordered)
        );
    }

    proptest! {
        /// Shares never fall as the backlog grows under the default curve,
        /// and stay within its range.
        #[test]
        fn default_curve_is_monotonic(a in any::<u64>(), b in any::<u64>()) {
            let controller = BacklogController::default();
            let (low, high) = (a.min(b), a.max(b));
            prop_assert!(controller.shares_for(low) <= controller.shares_for(high));
            prop_assert!((50..=1000).contains(&controller.shares_for(a)));
        }
    }
}
