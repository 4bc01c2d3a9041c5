//! Timestamps and the cluster's hybrid logical clock.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sync::{AtomicU64, Ordering};

/// A version's timestamp: microseconds since the Unix epoch.
///
/// Timestamps order versions under last-write-wins. The cluster's clock
/// issues strictly increasing, unique ones; clients may bring their own with
/// [`Cluster::put_at`](crate::Cluster::put_at) and
/// [`Cluster::delete_at`](crate::Cluster::delete_at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The latest timestamp a client may bring, whatever
    /// [`Config::max_clock_skew`](crate::Config::max_clock_skew) allows:
    /// 2^63 − 1 µs, about 292 000 years after 1970. Past it the cluster's
    /// clock could run out of successors, and a later `put` would no longer
    /// be sure to win, so later timestamps are refused.
    pub const LATEST: Timestamp = Timestamp(u64::MAX >> 1);

    /// The wall-clock time now, in microseconds since the Unix epoch.
    ///
    /// This is not what the cluster stamps writes with (its hybrid logical
    /// clock may run ahead of wall time; see
    /// [`Cluster::last_timestamp`](crate::Cluster::last_timestamp)); it is a
    /// convenient source of client timestamps.
    pub fn wall() -> Timestamp {
        Timestamp(wall_micros())
    }
}

/// The number of microseconds, as for a `u64` (so `Timestamp(7)` displays as
/// `7`); error messages add the unit.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u64> for Timestamp {
    fn from(micros: u64) -> Self {
        Timestamp(micros)
    }
}

fn wall_micros() -> u64 {
    // A clock set before 1970 reads as the epoch; the logical part of the
    // clock keeps timestamps increasing regardless.
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A hybrid logical clock shared by the whole cluster.
///
/// [`Clock::now`] returns the wall-clock time in microseconds, or the last
/// timestamp plus one if that is not greater: timestamps it issues are
/// strictly increasing and unique. [`Clock::observe`] moves it past a
/// timestamp a client brought, so a later `now` wins over it.
///
/// Cost: one read of the system clock and one compare-and-swap loop on a
/// single atomic. Every ordering is `Relaxed`: the clock only needs the
/// total modification order of its one atomic (read-modify-write operations
/// always see the latest value), and nothing else is published through it.
pub(crate) struct Clock {
    last: AtomicU64,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            last: AtomicU64::new(0),
        }
    }

    /// A fresh timestamp, greater than every one issued or observed before.
    pub(crate) fn now(&self) -> Timestamp {
        let wall = wall_micros();
        let previous = self
            .last
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(wall.max(last.saturating_add(1)))
            })
            .expect("the update closure always returns Some");
        Timestamp(wall.max(previous.saturating_add(1)))
    }

    /// Moves the clock to at least `ts`, so the next [`Clock::now`] is greater.
    pub(crate) fn observe(&self, ts: Timestamp) {
        self.last.fetch_max(ts.0, Ordering::Relaxed);
    }

    /// The latest timestamp issued or observed, without advancing the clock.
    pub(crate) fn last(&self) -> Timestamp {
        Timestamp(self.last.load(Ordering::Relaxed))
    }

    /// The latest timestamp a client may bring: wall time plus `skew`, and
    /// never past [`Timestamp::LATEST`].
    pub(crate) fn horizon(skew: Duration) -> Timestamp {
        let skew = u64::try_from(skew.as_micros()).unwrap_or(u64::MAX);
        Timestamp(wall_micros().saturating_add(skew).min(Timestamp::LATEST.0))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn now_is_strictly_increasing() {
        let clock = Clock::new();
        let mut last = clock.now();
        for _ in 0..10_000 {
            let next = clock.now();
            assert!(next > last);
            last = next;
        }
    }

    #[test]
    fn observe_moves_the_clock_past_a_future_timestamp() {
        let clock = Clock::new();
        let future = Timestamp(wall_micros() + 30_000_000);
        clock.observe(future);
        assert!(clock.now() > future);
    }
}
