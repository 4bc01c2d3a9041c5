//! Versions and the last-write-wins rule.

use bytes::Bytes;

use crate::clock::Timestamp;

/// One version of a key: a value, or a tombstone recording a delete.
///
/// Replicas keep the version that [supersedes](Versioned::supersedes) every
/// other they were given, so they converge whatever order writes arrive in.
///
/// ```
/// use ringkv::{Bytes, Timestamp, Versioned};
/// let deleted = Versioned { timestamp: Timestamp(7), value: None };
/// let written = Versioned { timestamp: Timestamp(7), value: Some(Bytes::from("v")) };
/// // On a timestamp tie, the tombstone wins.
/// assert!(deleted.supersedes(&written));
/// assert!(!written.supersedes(&deleted));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Versioned {
    /// When the version was written.
    pub timestamp: Timestamp,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
}

impl Versioned {
    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Whether this version replaces `other` under last-write-wins.
    ///
    /// The later timestamp wins. On a tie (possible only with client
    /// timestamps), a tombstone beats a value, and between two values the
    /// larger byte string (lexicographic order) wins. A version equal to
    /// `other` does not supersede it. The rule is a strict total order, so
    /// replicas that saw the same versions agree.
    pub fn supersedes(&self, other: &Versioned) -> bool {
        if self.timestamp != other.timestamp {
            return self.timestamp > other.timestamp;
        }
        match (&self.value, &other.value) {
            (None, Some(_)) => true,
            (Some(mine), Some(theirs)) => mine > theirs,
            (_, None) => false,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn v(ts: u64, value: Option<&'static str>) -> Versioned {
        Versioned {
            timestamp: Timestamp(ts),
            value: value.map(|v| Bytes::from_static(v.as_bytes())),
        }
    }

    #[test]
    fn later_timestamp_wins_whatever_the_payload() {
        assert!(v(2, Some("a")).supersedes(&v(1, None)));
        assert!(!v(1, None).supersedes(&v(2, Some("a"))));
    }

    #[test]
    fn ties_break_tombstone_first_then_larger_bytes() {
        assert!(v(5, None).supersedes(&v(5, Some("zzz"))));
        assert!(v(5, Some("b")).supersedes(&v(5, Some("a"))));
        assert!(v(5, Some("ab")).supersedes(&v(5, Some("a"))));
        assert!(!v(5, Some("a")).supersedes(&v(5, Some("b"))));
    }

    #[test]
    fn an_equal_version_does_not_supersede() {
        assert!(!v(5, None).supersedes(&v(5, None)));
        assert!(!v(5, Some("a")).supersedes(&v(5, Some("a"))));
    }
}
