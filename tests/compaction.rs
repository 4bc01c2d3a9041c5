//! Tombstone compaction: what it removes, what it must keep, and the
//! watermark that stops late writes from resurrecting purged keys.

use ringkv::{Bytes, Cluster, Config, Error, Timestamp, Versioned};

fn cluster(replication: usize) -> Cluster {
    let config = Config {
        replication,
        read_repair: false,
        ..Config::default()
    };
    Cluster::new(config, ["a", "b", "c", "d"]).unwrap()
}

/// How many replicas of `key` hold anything.
fn held(cluster: &Cluster, key: &str) -> usize {
    cluster
        .servers()
        .iter()
        .filter(|id| cluster.server(id).unwrap().get(key).is_some())
        .count()
}

fn total_entries(cluster: &Cluster) -> usize {
    cluster
        .servers()
        .iter()
        .map(|id| cluster.server(id).unwrap().len())
        .sum()
}

#[test]
fn agreed_tombstones_older_than_the_cutoff_are_removed() {
    let cluster = cluster(3);
    for i in 0..100 {
        cluster.put(format!("k{i}"), "v").unwrap();
    }
    let mut last = Timestamp(0);
    for i in 0..50 {
        last = cluster.delete(format!("k{i}")).unwrap();
    }
    assert_eq!(total_entries(&cluster), 300);

    let removed = cluster.compact(Timestamp(last.0 + 1)).unwrap();
    assert_eq!(removed, 150, "three replicas of fifty deleted keys");
    assert_eq!(total_entries(&cluster), 150);
    for i in 0..50 {
        assert_eq!(held(&cluster, &format!("k{i}")), 0);
        assert_eq!(cluster.get(format!("k{i}")).unwrap(), None);
    }
    for i in 50..100 {
        assert_eq!(
            cluster.get(format!("k{i}")).unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    let stats = cluster.stats();
    assert_eq!(stats.compacted, 150);
    assert_eq!(stats.watermark, Timestamp(last.0 + 1));
}

#[test]
fn tombstones_at_or_after_the_cutoff_stay() {
    let cluster = cluster(2);
    let deleted = cluster.delete("k").unwrap();
    assert_eq!(
        cluster.compact(deleted).unwrap(),
        0,
        "the cutoff is exclusive"
    );
    assert_eq!(held(&cluster, "k"), 2);
    assert_eq!(cluster.compact(Timestamp(deleted.0 + 1)).unwrap(), 2);
    assert_eq!(held(&cluster, "k"), 0);
}

#[test]
fn a_replica_with_an_older_live_value_keeps_every_tombstone() {
    let cluster = cluster(3);
    let key = "k";
    let written = cluster.put(key, "old").unwrap();
    let replicas = cluster.replicas(key);
    // The delete reaches only two replicas (as if a message were lost).
    let tombstone = Versioned {
        timestamp: Timestamp(written.0 + 10),
        value: None,
    };
    for id in &replicas[..2] {
        cluster
            .server(id)
            .unwrap()
            .apply(key, tombstone.clone())
            .unwrap();
    }

    let cutoff = Timestamp(tombstone.timestamp.0 + 1);
    assert_eq!(cluster.compact(cutoff).unwrap(), 0);
    assert_eq!(
        held(&cluster, key),
        3,
        "removing any would let the old value win"
    );
    assert_eq!(cluster.get(key).unwrap(), None);
}

#[test]
fn a_replica_holding_nothing_keeps_every_tombstone() {
    let cluster = cluster(3);
    let key = "k";
    let replicas = cluster.replicas(key);
    let tombstone = Versioned {
        timestamp: Timestamp(Timestamp::wall().0 - 1_000),
        value: None,
    };
    for id in &replicas[1..] {
        cluster
            .server(id)
            .unwrap()
            .apply(key, tombstone.clone())
            .unwrap();
    }
    assert_eq!(cluster.compact(Timestamp::wall()).unwrap(), 0);
    assert_eq!(held(&cluster, key), 2);
}

#[test]
fn a_tombstone_superseded_on_another_replica_is_removed() {
    let cluster = cluster(2);
    let key = "k";
    let replicas = cluster.replicas(key);
    let base = Timestamp::wall().0 - 10_000;
    let older = Versioned {
        timestamp: Timestamp(base),
        value: None,
    };
    let newer = Versioned {
        timestamp: Timestamp(base + 5),
        value: None,
    };
    cluster
        .server(&replicas[0])
        .unwrap()
        .apply(key, older)
        .unwrap();
    cluster
        .server(&replicas[1])
        .unwrap()
        .apply(key, newer.clone())
        .unwrap();

    // Every replica holds the older tombstone or something newer, so it
    // goes; the newer one does not (the first replica only holds the older).
    assert_eq!(cluster.compact(Timestamp(base + 100)).unwrap(), 1);
    assert_eq!(cluster.server(&replicas[0]).unwrap().get(key), None);
    assert_eq!(cluster.server(&replicas[1]).unwrap().get(key), Some(newer));
    assert_eq!(cluster.get(key).unwrap(), None);
}

#[test]
fn the_watermark_refuses_late_writes_and_never_goes_down() {
    let cluster = cluster(2);
    cluster.put("k", "v").unwrap();
    let deleted = cluster.delete("k").unwrap();
    let cutoff = Timestamp(deleted.0 + 1);
    cluster.compact(cutoff).unwrap();

    let late = cluster.put_at("k", "late", Timestamp(deleted.0 - 1));
    assert!(
        matches!(late, Err(Error::TimestampCompacted { .. })),
        "{late:?}"
    );
    assert_eq!(
        cluster.get("k").unwrap(),
        None,
        "the purged key stays deleted"
    );

    // An earlier cutoff compacts nothing new and keeps the watermark.
    cluster.compact(Timestamp(cutoff.0 - 5)).unwrap();
    assert_eq!(cluster.stats().watermark, cutoff);
    // The clock was moved past the watermark.
    assert!(cluster.put("k", "again").unwrap() > cutoff);
    assert_eq!(cluster.get("k").unwrap(), Some(Bytes::from("again")));
}

#[test]
fn compaction_never_loses_puts_that_race_it() {
    let cluster = cluster(3);
    let keys: Vec<String> = (0..400).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cluster.put(key, "v").unwrap();
        cluster.delete(key).unwrap();
    }
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            keys.iter()
                .map(|key| (key.clone(), cluster.put(key, "back").unwrap()))
                .collect::<Vec<_>>()
        });
        for _ in 0..5 {
            cluster.compact(cluster.last_timestamp()).unwrap();
        }
        writer.join().unwrap()
    });
    for (key, timestamp) in written {
        let version = cluster.get_versioned(&key).unwrap().unwrap();
        assert_eq!(version.timestamp, timestamp, "{key}");
        assert_eq!(held(&cluster, &key), 3, "{key} is on every replica");
    }
}

#[test]
fn compaction_waits_for_membership_changes_and_they_for_it() {
    let cluster = cluster(2);
    for i in 0..200 {
        cluster.put(format!("k{i}"), "v").unwrap();
        cluster.delete(format!("k{i}")).unwrap();
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..5 {
                cluster.join(format!("x{round}")).unwrap();
                cluster.leave(&format!("x{round}")).unwrap();
            }
        });
        for _ in 0..5 {
            cluster.compact(cluster.last_timestamp()).unwrap();
        }
    });
    // The cutoff is exclusive: one past the last delete.
    cluster
        .compact(Timestamp(cluster.last_timestamp().0 + 1))
        .unwrap();
    assert_eq!(total_entries(&cluster), 0, "every agreed tombstone is gone");
}
