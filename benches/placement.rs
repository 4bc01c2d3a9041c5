//! Placement: from a key to its preference list.
//!
//! Groups `placement/N{10,100}` (K 10, R 3) time, on the same 4096 keys:
//!
//! * `md5`: `ring_position` alone, one MD5 of the 16-byte key;
//! * `floor`: the physical floor, one MD5 plus one binary search over the
//!   sorted vnode positions;
//! * `ringkv`: `Cluster::replicas`, which returns the list as a `Vec` of ids;
//! * `btree`: the same `Vec` from a `BTreeMap` ring walked per call.
//!
//! Groups `placement-single/N{10,100}` (R 1) compare the single-server
//! lookup with the `hashring` crate, given an MD5 hasher and vnodes named as
//! ringkv names them, so both do the same job on the same ring.
//! `hashring` returns a reference to a vnode; `hashring-owned` also builds
//! the `Vec<ServerId>` that `Cluster::replicas` returns.
//!
//! Run: `cargo bench --bench placement`.

mod common;

use std::hash::{BuildHasher, Hash, Hasher};
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use hashring::HashRing;
use md5::{Digest, Md5};
use ringkv::{ring_position, Config, ServerId};

use common::btree_ring::BTreeRing;
use common::{assert_same_placement, cluster_of, key, server_ids, Ratios, Scale};

const VNODES: usize = 10;
const KEYS: usize = 4096;

/// Feeds a hasher the raw bytes (no length prefix, no terminator), so the
/// hash of a key is the hash of exactly its bytes.
struct RawBytes<'a>(&'a [u8]);

impl Hash for RawBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

/// A `hashring` node: one vnode, named `"{id}-{i}"`.
#[derive(Debug)]
struct VNode {
    server: ServerId,
    name: String,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.name.as_bytes());
    }
}

/// A hasher whose result is ringkv's ring position of the bytes written.
#[derive(Default)]
struct Md5Position {
    buffer: Vec<u8>,
}

impl Hasher for Md5Position {
    fn write(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = Md5::digest(&self.buffer);
        u64::from(u32::from_be_bytes([
            digest[12], digest[13], digest[14], digest[15],
        ]))
    }
}

#[derive(Clone, Copy, Default)]
struct Md5Build;

impl BuildHasher for Md5Build {
    type Hasher = Md5Position;

    fn build_hasher(&self) -> Md5Position {
        // Room for a short key, so hashing one does not reallocate.
        Md5Position {
            buffer: Vec::with_capacity(64),
        }
    }
}

fn hashring_of(ids: &[ServerId]) -> HashRing<VNode, Md5Build> {
    let mut ring = HashRing::with_hasher(Md5Build);
    ring.batch_add(
        ids.iter()
            .flat_map(|id| {
                (0..VNODES).map(move |i| VNode {
                    server: id.clone(),
                    name: format!("{id}-{i}"),
                })
            })
            .collect(),
    );
    ring
}

/// The sorted vnode positions of `ids`: what the floor searches.
fn positions(ids: &[ServerId]) -> Vec<u32> {
    let mut positions: Vec<u32> = ids
        .iter()
        .flat_map(|id| (0..VNODES).map(move |i| ring_position(format!("{id}-{i}"))))
        .collect();
    positions.sort_unstable();
    positions
}

/// The floor: one MD5 and one binary search (the index of the first vnode
/// strictly after the key, as the rule says).
#[inline]
fn floor(positions: &[u32], key: &[u8]) -> usize {
    let position = ring_position(key);
    let next = positions.partition_point(|&p| p <= position);
    if next == positions.len() {
        0
    } else {
        next
    }
}

fn main() {
    let scale = Scale::from_env();
    let mut c = Criterion::default().configure_from_args();
    let mut ratios = Ratios::new("placement");

    let keys: Vec<[u8; 16]> = (0..KEYS as u64)
        .map(|i| key(i.wrapping_mul(0x9e37_79b9)))
        .collect();
    let nth = |i: usize| -> &[u8] { &keys[i % KEYS] };

    for n in [10usize, 100] {
        let ids = server_ids(n);
        let positions = positions(&ids);
        let config = |replication| Config {
            vnodes: VNODES,
            replication,
            ..Config::default()
        };
        let cluster = cluster_of(config(3), &ids);
        let btree = BTreeRing::new(&ids, VNODES, 3);
        assert_same_placement("btree ring", |k| cluster.replicas(k), |k| btree.replicas(k));

        let group_name = format!("placement/N{n}");
        let mut group = c.benchmark_group(&group_name);
        group
            .throughput(Throughput::Elements(1))
            .sample_size(50)
            .warm_up_time(scale.time(Duration::from_millis(700)))
            .measurement_time(scale.time(Duration::from_secs(2)));
        group.bench_function("md5", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                ring_position(black_box(nth(i)))
            })
        });
        group.bench_function("floor", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                floor(&positions, black_box(nth(i)))
            })
        });
        group.bench_function("ringkv", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                cluster.replicas(black_box(nth(i)))
            })
        });
        group.bench_function("btree", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                btree.replicas(black_box(nth(i)))
            })
        });
        group.finish();
        ratios.compare(&group_name, "ringkv", "floor", Some(1.3));
        ratios.compare(&group_name, "md5", "floor", None);
        ratios.compare(&group_name, "ringkv", "btree", None);

        let single = cluster_of(config(1), &ids);
        let hashring = hashring_of(&ids);
        let hashring_owner = |k: &[u8]| -> &ServerId {
            &hashring
                .get(&RawBytes(k))
                .expect("the ring has vnodes")
                .server
        };
        assert_same_placement(
            "hashring",
            |k| single.replicas(k),
            |k| vec![hashring_owner(k).clone()],
        );

        let group_name = format!("placement-single/N{n}");
        let mut group = c.benchmark_group(&group_name);
        group
            .throughput(Throughput::Elements(1))
            .sample_size(50)
            .warm_up_time(scale.time(Duration::from_millis(700)))
            .measurement_time(scale.time(Duration::from_secs(2)));
        group.bench_function("floor", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                floor(&positions, black_box(nth(i)))
            })
        });
        group.bench_function("ringkv", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                single.replicas(black_box(nth(i)))
            })
        });
        group.bench_function("hashring", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                hashring_owner(black_box(nth(i))) as *const ServerId
            })
        });
        group.bench_function("hashring-owned", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                vec![hashring_owner(black_box(nth(i))).clone()]
            })
        });
        group.finish();
        ratios.compare(&group_name, "ringkv", "floor", Some(1.3));
        ratios.compare(&group_name, "ringkv", "hashring", None);
        ratios.compare(&group_name, "ringkv", "hashring-owned", None);
    }

    c.final_summary();
    println!("{}", ratios.render());
}
