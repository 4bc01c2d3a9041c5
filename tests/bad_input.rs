//! Refused input: every check the public API makes, as a table.
//!
//! Each case names an operation, the `Error` it must return, and the words or
//! numbers its message must contain (the limit and the input that broke it).
//! Cases that run against a loaded cluster also check that nothing changed:
//! every server's contents, the server list, every key's preference list, the
//! clock and the counters in `stats()` are the same afterwards. Invalid
//! configurations and server lists given to `Cluster::new` are checked the
//! same way, minus the cluster. The `Error` type's traits are checked at
//! compile time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{contents, key, load, Contents};
use ringkv::{
    Bytes, Cluster, Config, Error, ServerId, Stats, Timestamp, Versioned, MAX_SERVERS, MAX_VNODES,
};

const MAX_KEY: usize = 16;
const MAX_VALUE: usize = 64;
const SKEW: Duration = Duration::from_secs(60);
/// Seconds beyond the skew that a refused timestamp is set at.
const AHEAD: u64 = 3_600;

fn config() -> Config {
    Config {
        max_key_len: MAX_KEY,
        max_value_len: MAX_VALUE,
        max_clock_skew: SKEW,
        ..Config::default()
    }
}

/// A timestamp far outside the allowed skew.
fn too_far_ahead() -> Timestamp {
    Timestamp(Timestamp::wall().0 + (SKEW.as_secs() + AHEAD) * 1_000_000)
}

/// Everything a refused operation must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    contents: Contents,
    servers: Vec<ServerId>,
    lists: Vec<Vec<ServerId>>,
    last_timestamp: Timestamp,
    stats: Stats,
}

fn state(cluster: &Cluster) -> State {
    State {
        contents: contents(cluster),
        servers: cluster.servers(),
        lists: (0..200).map(|i| cluster.replicas(key(i))).collect(),
        last_timestamp: cluster.last_timestamp(),
        stats: cluster.stats(),
    }
}

/// A loaded cluster: 4 servers, 200 keys, some deleted.
fn loaded() -> Cluster {
    let cluster = Cluster::new(config(), ["s0", "s1", "s2", "s3"]).unwrap();
    load(&cluster, 200);
    for i in (0..200).step_by(5) {
        cluster.delete(key(i)).unwrap();
    }
    cluster
}

fn long_key() -> Vec<u8> {
    vec![b'k'; MAX_KEY + 1]
}

fn long_value() -> Bytes {
    Bytes::from(vec![b'v'; MAX_VALUE + 1])
}

fn apply_on(cluster: &Cluster, key: &[u8], version: Versioned) -> Result<(), Error> {
    cluster.server("s1").unwrap().apply(key, version).map(drop)
}

/// An operation on a cluster and what it must be refused with.
struct Case {
    name: &'static str,
    op: fn(&Cluster) -> Result<(), Error>,
    check: fn(&Error),
}

fn key_too_long(error: &Error) {
    assert_eq!(
        *error,
        Error::KeyTooLong {
            len: MAX_KEY + 1,
            max: MAX_KEY,
        }
    );
    assert_mentions(error, &["key", "17", "16", "max_key_len"]);
}

fn value_too_long(error: &Error) {
    assert_eq!(
        *error,
        Error::ValueTooLong {
            len: MAX_VALUE + 1,
            max: MAX_VALUE,
        }
    );
    assert_mentions(error, &["value", "65", "64", "max_value_len"]);
}

fn timestamp_too_far_ahead(error: &Error) {
    let Error::TimestampTooFarAhead {
        timestamp,
        horizon,
        max_skew,
    } = error
    else {
        panic!("expected TimestampTooFarAhead, got {error:?}");
    };
    assert_eq!(*max_skew, SKEW);
    // The horizon is wall time plus the skew when it was checked, about an
    // hour before the refused timestamp.
    let gap = timestamp.0 - horizon.0;
    assert!(
        gap > (AHEAD - 60) * 1_000_000 && gap <= AHEAD * 1_000_000,
        "{timestamp} vs horizon {horizon}"
    );
    assert_mentions(
        error,
        &[
            &timestamp.0.to_string(),
            &horizon.0.to_string(),
            "max_clock_skew",
            "60s",
        ],
    );
}

fn assert_mentions(error: &Error, needles: &[&str]) {
    let message = error.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "{message:?} does not mention {needle:?}"
        );
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "put: key too long",
            op: |c| c.put(long_key(), "v").map(drop),
            check: key_too_long,
        },
        Case {
            name: "put: key and value too long (the key is checked first)",
            op: |c| c.put(long_key(), long_value()).map(drop),
            check: key_too_long,
        },
        Case {
            name: "put: value too long",
            op: |c| c.put(key(1), long_value()).map(drop),
            check: value_too_long,
        },
        Case {
            name: "put_at: key too long",
            op: |c| c.put_at(long_key(), "v", Timestamp(1)),
            check: key_too_long,
        },
        Case {
            name: "put_at: value too long",
            op: |c| c.put_at(key(1), long_value(), Timestamp(1)),
            check: value_too_long,
        },
        Case {
            name: "put_at: timestamp too far ahead",
            op: |c| c.put_at(key(1), "v", too_far_ahead()),
            check: timestamp_too_far_ahead,
        },
        Case {
            name: "put_at: timestamp too far ahead, new key",
            op: |c| c.put_at("fresh", "v", too_far_ahead()),
            check: timestamp_too_far_ahead,
        },
        Case {
            name: "put_at: u64::MAX",
            op: |c| c.put_at(key(1), "v", Timestamp(u64::MAX)),
            check: |e| assert!(matches!(e, Error::TimestampTooFarAhead { .. }), "{e:?}"),
        },
        Case {
            name: "get: key too long",
            op: |c| c.get(long_key()).map(drop),
            check: key_too_long,
        },
        Case {
            name: "get_versioned: key too long",
            op: |c| c.get_versioned(long_key()).map(drop),
            check: key_too_long,
        },
        Case {
            name: "delete: key too long",
            op: |c| c.delete(long_key()).map(drop),
            check: key_too_long,
        },
        Case {
            name: "delete_at: key too long",
            op: |c| c.delete_at(long_key(), Timestamp(1)),
            check: key_too_long,
        },
        Case {
            name: "delete_at: timestamp too far ahead",
            op: |c| c.delete_at(key(1), too_far_ahead()),
            check: timestamp_too_far_ahead,
        },
        Case {
            name: "apply: key too long",
            op: |c| {
                let version = Versioned {
                    timestamp: Timestamp(1),
                    value: None,
                };
                apply_on(c, &long_key(), version)
            },
            check: key_too_long,
        },
        Case {
            name: "apply: value too long",
            op: |c| {
                let version = Versioned {
                    timestamp: Timestamp::wall(),
                    value: Some(long_value()),
                };
                apply_on(c, b"k", version)
            },
            check: value_too_long,
        },
        Case {
            name: "apply: timestamp too far ahead, value",
            op: |c| {
                let version = Versioned {
                    timestamp: too_far_ahead(),
                    value: Some(Bytes::from_static(b"v")),
                };
                apply_on(c, key(2).as_bytes(), version)
            },
            check: timestamp_too_far_ahead,
        },
        Case {
            name: "apply: timestamp too far ahead, tombstone",
            op: |c| {
                let version = Versioned {
                    timestamp: too_far_ahead(),
                    value: None,
                };
                apply_on(c, key(2).as_bytes(), version)
            },
            check: timestamp_too_far_ahead,
        },
        Case {
            name: "join: empty id",
            op: |c| c.join("").map(drop),
            check: |e| {
                assert_eq!(*e, Error::EmptyServerId);
                assert_mentions(e, &["empty"]);
            },
        },
        Case {
            name: "join: duplicate id",
            op: |c| c.join("s2").map(drop),
            check: |e| {
                assert_eq!(*e, Error::DuplicateServer { id: "s2".into() });
                assert_mentions(e, &["\"s2\"", "already"]);
            },
        },
        Case {
            name: "leave: unknown id",
            op: |c| c.leave("s9").map(drop),
            check: |e| {
                assert_eq!(*e, Error::UnknownServer { id: "s9".into() });
                assert_mentions(e, &["\"s9\"", "not in the cluster"]);
            },
        },
        Case {
            name: "leave: empty id",
            op: |c| c.leave("").map(drop),
            check: |e| assert_eq!(*e, Error::UnknownServer { id: "".into() }),
        },
    ]
}

#[test]
fn refused_operations_change_nothing() {
    for case in cases() {
        let cluster = loaded();
        let before = state(&cluster);

        let error = (case.op)(&cluster).expect_err(case.name);
        (case.check)(&error);
        assert_eq!(state(&cluster), before, "{}: something changed", case.name);

        // The cluster still works after the refusal.
        let written = cluster.put(key(3), "after").unwrap();
        assert!(written > before.last_timestamp, "{}", case.name);
        assert_eq!(
            cluster.get(key(3)).unwrap().as_deref(),
            Some(&b"after"[..]),
            "{}",
            case.name
        );
    }
}

#[test]
fn leave_of_the_last_server_is_refused_and_keeps_its_data() {
    let cluster = Cluster::new(config(), ["only"]).unwrap();
    let expected = load(&cluster, 50);
    let before = contents(&cluster);
    let stats = cluster.stats();

    let error = cluster.leave("only").unwrap_err();
    assert_eq!(error, Error::LastServer { id: "only".into() });
    assert_mentions(&error, &["\"only\"", "last"]);
    assert_eq!(contents(&cluster), before);
    assert_eq!(cluster.servers(), ["only"]);
    assert_eq!(cluster.stats(), stats);
    for (k, version) in &expected {
        assert_eq!(cluster.get_versioned(k).unwrap().as_ref(), Some(version));
    }

    // Down to one by leaving, then refused the same way.
    let cluster = Cluster::new(config(), ["a", "b"]).unwrap();
    load(&cluster, 50);
    cluster.leave("a").unwrap();
    let before = contents(&cluster);
    assert_eq!(
        cluster.leave("b").unwrap_err(),
        Error::LastServer { id: "b".into() }
    );
    assert_eq!(contents(&cluster), before);
    assert_eq!(cluster.server("b").unwrap().len(), 50);
}

#[test]
fn limits_are_inclusive() {
    let cluster = loaded();
    let key = vec![b'k'; MAX_KEY];
    let value = Bytes::from(vec![b'v'; MAX_VALUE]);
    cluster.put(&key, value.clone()).unwrap();
    assert_eq!(cluster.get(&key).unwrap(), Some(value.clone()));
    cluster
        .put_at(
            &key,
            value.clone(),
            Timestamp(Timestamp::wall().0 + 1_000_000),
        )
        .unwrap();
    cluster.delete_at(&key, Timestamp::wall()).unwrap();
    let version = Versioned {
        timestamp: Timestamp(Timestamp::wall().0 + 50 * 1_000_000),
        value: Some(value),
    };
    assert!(cluster
        .server("s0")
        .unwrap()
        .apply(&key, version.clone())
        .unwrap());
    assert_eq!(cluster.server("s0").unwrap().get(&key), Some(version));
}

#[test]
fn server_get_of_an_over_long_key_is_none() {
    let cluster = loaded();
    assert_eq!(cluster.server("s0").unwrap().get(long_key()), None);
}

/// A `Cluster::new` call that must fail.
fn refused(config: Config, servers: &[&str]) -> Error {
    Cluster::new(config, servers.iter().copied()).expect_err("Cluster::new must refuse")
}

#[test]
fn invalid_configurations_are_refused() {
    let servers = ["a", "b"];

    let error = refused(
        Config {
            vnodes: 0,
            ..config()
        },
        &servers,
    );
    assert_eq!(error, Error::ZeroVnodes);
    assert_mentions(&error, &["vnodes", "0"]);

    let error = refused(
        Config {
            vnodes: MAX_VNODES + 1,
            ..config()
        },
        &servers,
    );
    assert_eq!(
        error,
        Error::TooManyVnodes {
            vnodes: 1025,
            max: 1024,
        }
    );
    assert_mentions(&error, &["vnodes", "1025", "1024"]);

    let error = refused(
        Config {
            replication: 0,
            ..config()
        },
        &servers,
    );
    assert_eq!(error, Error::ZeroReplication);
    assert_mentions(&error, &["replication", "0"]);

    // The limits themselves are accepted.
    let cluster = Cluster::new(
        Config {
            vnodes: MAX_VNODES,
            replication: 1,
            ..config()
        },
        servers,
    )
    .unwrap();
    cluster.put("k", "v").unwrap();
}

#[test]
fn invalid_server_lists_are_refused() {
    let error = refused(config(), &[]);
    assert_eq!(error, Error::NoServers);
    assert_mentions(&error, &["empty"]);

    let error = refused(config(), &["a", "", "b"]);
    assert_eq!(error, Error::EmptyServerId);
    assert_mentions(&error, &["empty"]);

    let error = refused(config(), &["a", "b", "c", "b"]);
    assert_eq!(error, Error::DuplicateServer { id: "b".into() });
    assert_mentions(&error, &["\"b\""]);

    let many: Vec<String> = (0..=MAX_SERVERS).map(|i| format!("s{i}")).collect();
    let error = Cluster::new(config(), many).unwrap_err();
    assert_eq!(
        error,
        Error::TooManyServers {
            count: 4097,
            max: 4096,
        }
    );
    assert_mentions(&error, &["4097", "4096"]);
}

#[test]
fn join_beyond_the_server_limit_is_refused() {
    let config = Config {
        vnodes: 1,
        ..config()
    };
    let cluster = Cluster::new(config, (0..MAX_SERVERS).map(|i| format!("s{i}"))).unwrap();
    cluster.put("k", "v").unwrap();
    let lists_before = cluster.replicas("k");

    let error = cluster.join("one-too-many").unwrap_err();
    assert_eq!(
        error,
        Error::TooManyServers {
            count: MAX_SERVERS + 1,
            max: MAX_SERVERS,
        }
    );
    assert_mentions(&error, &["4097", "4096"]);
    assert_eq!(cluster.servers().len(), MAX_SERVERS);
    assert!(cluster.server("one-too-many").is_none());
    assert_eq!(cluster.replicas("k"), lists_before);
    assert_eq!(cluster.stats().membership_changes, 0);
}

#[test]
fn a_refused_timestamp_leaves_the_clock_alone_but_an_accepted_one_moves_it() {
    let cluster = loaded();
    let last = cluster.last_timestamp();
    cluster.put_at(key(1), "v", too_far_ahead()).unwrap_err();
    cluster.delete_at(key(1), too_far_ahead()).unwrap_err();
    assert_eq!(cluster.last_timestamp(), last);

    // The next put is stamped near wall time, not near the refused timestamp.
    let next = cluster.put(key(1), "v").unwrap();
    assert!(next.0 < Timestamp::wall().0 + 1_000_000, "{next}");

    let near = Timestamp(Timestamp::wall().0 + 30 * 1_000_000);
    cluster.put_at(key(1), "w", near).unwrap();
    assert_eq!(cluster.last_timestamp(), near);
}

#[test]
fn error_is_a_well_behaved_error_type() {
    fn assert_traits<E>()
    where
        E: std::error::Error + Send + Sync + 'static + Clone + PartialEq + std::fmt::Debug,
    {
    }
    assert_traits::<Error>();

    // It converts into the usual boxed error with `?`.
    fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Cluster::new(config(), Vec::<String>::new())?;
        Ok(())
    }
    let error = boxed().unwrap_err();
    assert_eq!(error.to_string(), Error::NoServers.to_string());
    assert!(error.downcast_ref::<Error>().is_some());

    // Debug names the variant and its fields.
    let debug = format!("{:?}", Error::KeyTooLong { len: 3, max: 2 });
    assert!(
        debug.contains("KeyTooLong") && debug.contains('3'),
        "{debug}"
    );
}

#[test]
fn every_message_is_distinct_and_non_empty() {
    let errors = [
        Error::KeyTooLong { len: 2, max: 1 },
        Error::ValueTooLong { len: 2, max: 1 },
        Error::TimestampTooFarAhead {
            timestamp: Timestamp(2),
            horizon: Timestamp(1),
            max_skew: SKEW,
        },
        Error::ZeroVnodes,
        Error::TooManyVnodes { vnodes: 2, max: 1 },
        Error::ZeroReplication,
        Error::NoServers,
        Error::TooManyServers { count: 2, max: 1 },
        Error::EmptyServerId,
        Error::DuplicateServer { id: "x".into() },
        Error::UnknownServer { id: "x".into() },
        Error::LastServer { id: "x".into() },
    ];
    let messages: BTreeMap<String, &Error> = errors.iter().map(|e| (e.to_string(), e)).collect();
    assert_eq!(messages.len(), errors.len(), "{messages:#?}");
    assert!(messages.keys().all(|m| !m.is_empty()));
}

#[test]
fn writes_at_or_below_the_compaction_watermark_are_refused() {
    let cluster = loaded();
    let deleted = cluster.delete(key(1)).unwrap();
    let cutoff = Timestamp(deleted.0 + 1);
    assert!(cluster.compact(cutoff).unwrap() > 0);
    let before = state(&cluster);

    let compacted = |error: Error, timestamp: Timestamp| {
        assert_eq!(
            error,
            Error::TimestampCompacted {
                timestamp,
                watermark: cutoff,
            }
        );
        assert_mentions(
            &error,
            &[&timestamp.0.to_string(), &cutoff.0.to_string(), "watermark"],
        );
    };
    for timestamp in [Timestamp(0), deleted, cutoff] {
        compacted(
            cluster.put_at(key(1), "late", timestamp).unwrap_err(),
            timestamp,
        );
        compacted(cluster.delete_at(key(1), timestamp).unwrap_err(), timestamp);
        let version = Versioned {
            timestamp,
            value: Some(Bytes::from_static(b"late")),
        };
        compacted(
            apply_on(&cluster, key(1).as_bytes(), version).unwrap_err(),
            timestamp,
        );
    }
    assert_eq!(state(&cluster), before, "a refused write changed something");
    assert_eq!(cluster.get(key(1)).unwrap(), None);

    // Just above the watermark is accepted, and clock-stamped writes are
    // unaffected.
    cluster
        .put_at(key(1), "new", Timestamp(cutoff.0 + 1))
        .unwrap();
    assert_eq!(cluster.get(key(1)).unwrap().as_deref(), Some(&b"new"[..]));
    assert!(cluster.put(key(1), "newer").unwrap() > cutoff);
}

#[test]
fn compaction_too_far_ahead_is_refused_and_changes_nothing() {
    let cluster = loaded();
    cluster.delete(key(1)).unwrap();
    let before = state(&cluster);
    let error = cluster.compact(too_far_ahead()).unwrap_err();
    timestamp_too_far_ahead(&error);
    assert_eq!(state(&cluster), before);
    assert_eq!(cluster.stats().watermark, Timestamp(0));
}

#[test]
fn timestamps_past_latest_are_refused_whatever_the_skew() {
    // With an unbounded skew, only `Timestamp::LATEST` bounds client
    // timestamps, so the clock always has successors to issue.
    let config = Config {
        max_clock_skew: Duration::MAX,
        ..config()
    };
    let cluster = Cluster::new(config, ["s0", "s1", "s2", "s3"]).unwrap();
    let before = state(&cluster);
    let past_latest = Timestamp(Timestamp::LATEST.0 + 1);
    for timestamp in [past_latest, Timestamp(u64::MAX)] {
        let errors = [
            cluster.put_at(key(1), "v", timestamp).unwrap_err(),
            cluster.delete_at(key(1), timestamp).unwrap_err(),
            cluster.compact(timestamp).unwrap_err(),
            apply_on(
                &cluster,
                key(1).as_bytes(),
                Versioned {
                    timestamp,
                    value: None,
                },
            )
            .unwrap_err(),
        ];
        for error in errors {
            assert_eq!(
                error,
                Error::TimestampTooFarAhead {
                    timestamp,
                    horizon: Timestamp::LATEST,
                    max_skew: Duration::MAX,
                }
            );
            assert_mentions(&error, &[&timestamp.0.to_string(), "Timestamp::LATEST"]);
        }
    }
    assert_eq!(state(&cluster), before, "a refused write changed something");

    // The latest accepted timestamp still leaves the clock room: a later
    // clock-stamped put wins over it.
    cluster.put_at(key(1), "latest", Timestamp::LATEST).unwrap();
    let after = cluster.put(key(1), "after").unwrap();
    assert!(after > Timestamp::LATEST);
    assert_eq!(cluster.get(key(1)).unwrap().as_deref(), Some(&b"after"[..]));
}

#[test]
fn timestamp_zero_is_accepted_before_any_compaction() {
    // The watermark refuses writes only once a compaction has run; before
    // that, every timestamp within the skew is a valid client timestamp.
    let cluster = Cluster::new(config(), ["s0", "s1", "s2"]).unwrap();
    cluster.put_at(key(1), "zero", Timestamp(0)).unwrap();
    assert_eq!(cluster.get(key(1)).unwrap().as_deref(), Some(&b"zero"[..]));
    cluster.delete_at(key(2), Timestamp(0)).unwrap();
    let version = Versioned {
        timestamp: Timestamp(0),
        value: Some(Bytes::from_static(b"applied")),
    };
    assert_eq!(
        cluster.server("s0").unwrap().apply(key(3), version),
        Ok(true)
    );
    assert_eq!(cluster.stats().watermark, Timestamp(0));

    // A compaction through 0 then makes 0 a refused timestamp.
    cluster.compact(Timestamp(0)).unwrap();
    assert_eq!(
        cluster.put_at(key(1), "late", Timestamp(0)),
        Err(Error::TimestampCompacted {
            timestamp: Timestamp(0),
            watermark: Timestamp(0),
        })
    );
}
