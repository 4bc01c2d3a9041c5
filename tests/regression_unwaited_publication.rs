//! Regression: a publication that skipped its grace period.
//!
//! `leave` used to publish its last snapshot (the one that stops
//! `Cluster::server` from finding the departed server) without waiting for
//! operations on the snapshot before it. The next membership change then
//! waited only for holders of that last snapshot, so a put still running on
//! the older one could land on a server after the copy had read it. The put
//! ended up on the old replica, outside the key's preference list, and the
//! writer's own next `get` returned its previous version.
//!
//! Three writers check read-your-writes on their own keys (R = 1, so one
//! misplaced write is visible at once) while a fourth thread joins and leaves
//! servers, re-using ids. Before the fix this failed within a fraction of a
//! second in most runs.

use std::sync::atomic::{AtomicBool, Ordering};

use ringkv::{Cluster, Config};

#[test]
fn writes_never_land_behind_a_leave_followed_by_a_join() {
    let config = Config {
        replication: 1,
        ..Config::default()
    };
    let cluster = Cluster::new(config, (0..5).map(|i| format!("s{i:02}"))).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let (cluster, done) = (&cluster, &done);
                scope.spawn(move || {
                    for i in 0..15_000u32 {
                        if done.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("w{t}-{}", i % 50);
                        let written = if i % 5 == 4 {
                            cluster.delete(&key).unwrap()
                        } else {
                            cluster.put(&key, i.to_string()).unwrap()
                        };
                        let read = cluster.get_versioned(&key).unwrap().map(|v| v.timestamp);
                        if read != Some(written) {
                            done.store(true, Ordering::Relaxed);
                            let holders: Vec<_> = cluster
                                .servers()
                                .into_iter()
                                .filter(|id| cluster.server(id).unwrap().get(&key).is_some())
                                .collect();
                            panic!(
                                "{key}: wrote {written:?}, read {read:?}; replicas {:?}, held by {holders:?}",
                                cluster.replicas(&key)
                            );
                        }
                    }
                })
            })
            .collect();

        let churn = scope.spawn(|| {
            let mut round = 0;
            while !done.load(Ordering::Relaxed) {
                let visitor = format!("m{round}");
                let original = format!("s{:02}", round % 5);
                cluster.join(visitor.as_str()).unwrap();
                cluster.leave(&original).unwrap();
                cluster.join(original.as_str()).unwrap();
                cluster.leave(&visitor).unwrap();
                round += 1;
            }
            round
        });

        for writer in writers {
            let result = writer.join();
            done.store(true, Ordering::Relaxed);
            result.unwrap();
        }
        assert!(
            churn.join().unwrap() > 0,
            "no membership change raced the writers"
        );
    });
}
