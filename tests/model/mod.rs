//! A plain, sequential reference model of ringkv, and a runner that applies
//! each operation to both the crate and the model and checks, after every
//! step, that they agree exactly.
//!
//! The model keeps every server as a `BTreeMap` from key bytes to
//! [`Versioned`] and finds preference lists with a naive walk over the sorted
//! vnodes, written from the placement rule rather than from the crate's
//! precomputed ring. Migrations are modelled key by key: for a key whose
//! replica *set* changes, the newest version any old replica holds is merged
//! into every new replica, and the key is removed from the losers that stay;
//! a leaving server ends empty.
//!
//! Besides model equality the runner checks two invariants that do not
//! depend on the model at all, for every key no [`Server::apply`] ever
//! touched:
//!
//! * *nothing lost*: every replica holds exactly the newest acknowledged
//!   write, or, for a tombstone below the watermark, every replica has
//!   compacted it away;
//! * *placement*: no server off the key's preference list holds it.
//!
//! Shared by `tests/model_based.rs` (proptest), `tests/fuzz_regressions.rs`
//! and the cargo-fuzz target in `fuzz/`, which includes this file by path and
//! turns fuzzer bytes into operations with [`decode`].
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ringkv::{
    ring_position, Bytes, Cluster, Config, Error, Migration, Server, Timestamp, Versioned,
};

/// Longest key the model's clusters accept.
pub(crate) const MAX_KEY_LEN: usize = 64;
/// Longest value the model's clusters accept.
pub(crate) const MAX_VALUE_LEN: usize = 16;

/// The keys operations pick from: valid ones (the empty key and one at the
/// limit included; keys over 60 bytes take the store's heap-allocated entry
/// key path), then two over the limit.
pub(crate) const KEYS: &[&[u8]] = &[
    b"",
    b"a",
    b"b",
    b"c",
    b"key-1",
    b"key-2",
    b"key-3",
    b"\x00\xff",
    &[b'L'; MAX_KEY_LEN],
    &[b'O'; MAX_KEY_LEN + 1],
    &[b'k'; 200],
];

/// The values operations pick from: equal-length pairs (for timestamp ties
/// broken by the bytes), one at the limit, then two over it.
pub(crate) const VALUES: &[&[u8]] = &[
    b"",
    b"x",
    b"y",
    b"zz",
    b"exactly-16-bytes",
    b"seventeen-bytes!!",
    b"a value far longer than the configured limit of sixteen bytes",
];

/// The server ids `join` and `leave` pick from; the empty one is refused.
pub(crate) const IDS: &[&str] = &["", "a", "b", "c", "d", "e", "f", "g"];

/// The configuration of a run.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    /// Vnodes per server (1 to 4 in the generators).
    pub(crate) vnodes: usize,
    /// Replication factor (1 to 4 in the generators).
    pub(crate) replication: usize,
    /// Initial server ids: distinct and non-empty.
    pub(crate) servers: Vec<String>,
    /// Whether `get` repairs replicas.
    pub(crate) read_repair: bool,
}

impl Setup {
    /// The crate configuration of this setup.
    pub(crate) fn config(&self) -> Config {
        Config {
            vnodes: self.vnodes,
            replication: self.replication,
            max_key_len: MAX_KEY_LEN,
            max_value_len: MAX_VALUE_LEN,
            max_clock_skew: Duration::from_secs(60),
            read_repair: self.read_repair,
        }
    }
}

/// A timestamp a client brings, resolved against the state when the
/// operation runs (so shrinking keeps its meaning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// `Timestamp(n)`: far in the past, valid until a compaction passes it
    /// (0 is valid only before the first compaction).
    Past(u16),
    /// The watermark (0 before any compaction) plus `n`; 0 is at the
    /// watermark, refused once a compaction ran.
    AboveWatermark(u16),
    /// The clock's latest timestamp plus one, minus `n`: 1 ties with the
    /// latest clock-stamped write, 0 is after every write so far.
    Recent(u16),
    /// Ten seconds ahead of wall-clock time: within the allowed skew.
    Ahead,
    /// Two minutes ahead of wall-clock time: refused.
    TooFar,
    /// `u64::MAX`: refused.
    Max,
}

/// Which server a [`Server::apply`] goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The `n`-th replica (modulo the list's length) of the key.
    Replica(u8),
    /// The `n`-th current server (modulo their number), replica or not.
    Server(u8),
    /// The `n`-th server that left (a handle kept from before its `leave`);
    /// a current server if none has left.
    Departed(u8),
}

/// One operation. Keys, values and ids are indices into [`KEYS`],
/// [`VALUES`] and [`IDS`], taken modulo their length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put {
        key: u8,
        value: u8,
    },
    PutAt {
        key: u8,
        value: u8,
        at: At,
    },
    Delete {
        key: u8,
    },
    DeleteAt {
        key: u8,
        at: At,
    },
    Get {
        key: u8,
        versioned: bool,
    },
    /// `value: None` applies a tombstone.
    Apply {
        target: Target,
        key: u8,
        value: Option<u8>,
        at: At,
    },
    Join {
        id: u8,
    },
    Leave {
        id: u8,
    },
    Compact {
        older_than: At,
    },
}

pub(crate) fn key_of(index: u8) -> &'static [u8] {
    KEYS[index as usize % KEYS.len()]
}

pub(crate) fn value_of(index: u8) -> Bytes {
    Bytes::from_static(VALUES[index as usize % VALUES.len()])
}

pub(crate) fn id_of(index: u8) -> &'static str {
    IDS[index as usize % IDS.len()]
}

/// What one server holds.
pub(crate) type Contents = BTreeMap<Vec<u8>, Versioned>;

/// Last-write-wins, written out here rather than taken from
/// [`Versioned::supersedes`]: the later timestamp wins; on a tie a tombstone
/// beats a value and the larger bytes beat the smaller; a version never
/// beats an equal one.
fn wins(a: &Versioned, b: &Versioned) -> bool {
    (a.timestamp, a.value.is_none(), &a.value) > (b.timestamp, b.value.is_none(), &b.value)
}

/// How a last-write-wins merge into one replica went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Merged {
    Inserted,
    Replaced,
    Stale,
}

fn merge(contents: &mut Contents, key: &[u8], version: &Versioned) -> Merged {
    match contents.get_mut(key) {
        None => {
            contents.insert(key.to_vec(), version.clone());
            Merged::Inserted
        }
        Some(held) if wins(version, held) => {
            *held = version.clone();
            Merged::Replaced
        }
        Some(_) => Merged::Stale,
    }
}

/// The newer of two optional versions under last-write-wins.
fn newer(a: Option<Versioned>, b: Option<&Versioned>) -> Option<Versioned> {
    match (a, b) {
        (None, b) => b.cloned(),
        (Some(a), Some(b)) if wins(b, &a) => Some(b.clone()),
        (a, _) => a,
    }
}

/// A vnode: (position, server id, index), ordered as the placement rule says.
type Vnode = (u32, String, usize);

fn vnodes_of(servers: &[String], vnodes: usize) -> Vec<Vnode> {
    let mut ring: Vec<Vnode> = servers
        .iter()
        .flat_map(|id| {
            (0..vnodes).map(move |i| (ring_position(format!("{id}-{i}")), id.clone(), i))
        })
        .collect();
    ring.sort();
    ring
}

/// The naive preference-list walk: the first vnode strictly after the key's
/// position (wrapping), then distinct servers clockwise until min(R, N).
fn walk(ring: &[Vnode], servers: usize, replication: usize, key: &[u8]) -> Vec<String> {
    let position = ring_position(key);
    let start = ring.iter().position(|v| v.0 > position).unwrap_or(0);
    let wanted = replication.min(servers);
    let mut list: Vec<String> = Vec::with_capacity(wanted);
    for step in 0..ring.len() {
        let id = &ring[(start + step) % ring.len()].1;
        if !list.contains(id) {
            list.push(id.clone());
            if list.len() == wanted {
                break;
            }
        }
    }
    list
}

/// The reference model: the whole cluster as plain maps, run sequentially.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    config: Config,
    /// Current servers by id.
    servers: BTreeMap<String, Contents>,
    /// The current ring's vnodes, sorted.
    ring: Vec<Vnode>,
    /// Servers that left, in the order they left (handles stay usable).
    departed: Vec<Contents>,
    /// The highest cutoff `compact` ran with; `None` before the first.
    watermark: Option<Timestamp>,
    /// The clock's latest issued or observed timestamp.
    last: Timestamp,
    read_repairs: u64,
    membership_changes: u64,
    compacted: u64,
}

/// Where a model `apply` lands.
#[derive(Clone, Debug)]
pub(crate) enum Holder {
    Current(String),
    Departed(usize),
}

impl Model {
    pub(crate) fn new(setup: &Setup) -> Model {
        let mut ids = setup.servers.clone();
        ids.sort();
        Model {
            config: setup.config(),
            ring: vnodes_of(&ids, setup.vnodes),
            servers: ids.into_iter().map(|id| (id, Contents::new())).collect(),
            departed: Vec::new(),
            watermark: None,
            last: Timestamp(0),
            read_repairs: 0,
            membership_changes: 0,
            compacted: 0,
        }
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    pub(crate) fn contents(&self, id: &str) -> &Contents {
        &self.servers[id]
    }

    pub(crate) fn departed(&self) -> &[Contents] {
        &self.departed
    }

    /// The watermark as `Stats` reports it: `Timestamp(0)` before any
    /// compaction.
    pub(crate) fn watermark(&self) -> Timestamp {
        self.watermark.unwrap_or(Timestamp(0))
    }

    /// Whether `timestamp` is at or below the watermark of a compaction.
    fn below_watermark(&self, timestamp: Timestamp) -> bool {
        self.watermark
            .is_some_and(|watermark| timestamp <= watermark)
    }

    pub(crate) fn last(&self) -> Timestamp {
        self.last
    }

    pub(crate) fn preference(&self, key: &[u8]) -> Vec<String> {
        walk(&self.ring, self.servers.len(), self.config.replication, key)
    }

    // --- Validation, in the order the crate documents. ---

    fn check_key(&self, key: &[u8]) -> Result<(), Error> {
        if key.len() > self.config.max_key_len {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.config.max_key_len,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.len() > self.config.max_value_len {
            return Err(Error::ValueTooLong {
                len: value.len(),
                max: self.config.max_value_len,
            });
        }
        Ok(())
    }

    /// The horizon is wall-clock time plus the skew, read now, and never
    /// past `Timestamp::LATEST`; the runner compares the crate's horizon
    /// with a tolerance.
    fn check_ahead(&self, timestamp: Timestamp) -> Result<(), Error> {
        let skew = self.config.max_clock_skew;
        let horizon =
            Timestamp((Timestamp::wall().0 + skew.as_micros() as u64).min(Timestamp::LATEST.0));
        if timestamp > horizon {
            return Err(Error::TimestampTooFarAhead {
                timestamp,
                horizon,
                max_skew: skew,
            });
        }
        Ok(())
    }

    fn check_watermark(&self, timestamp: Timestamp) -> Result<(), Error> {
        match self.watermark {
            Some(watermark) if timestamp <= watermark => Err(Error::TimestampCompacted {
                timestamp,
                watermark,
            }),
            _ => Ok(()),
        }
    }

    // --- The data path. ---

    /// What `put` and `delete` refuse, before the crate stamps anything.
    pub(crate) fn check_stamped(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), Error> {
        self.check_key(key)?;
        if let Some(value) = value {
            self.check_value(value)?;
        }
        Ok(())
    }

    /// A clock-stamped write the crate acknowledged with `timestamp`.
    pub(crate) fn stamped(&mut self, key: &[u8], value: Option<Bytes>, timestamp: Timestamp) {
        self.last = timestamp;
        self.write(key, &Versioned { timestamp, value });
    }

    /// `put_at` or `delete_at` (`value: None`).
    pub(crate) fn write_at(
        &mut self,
        key: &[u8],
        value: Option<Bytes>,
        timestamp: Timestamp,
    ) -> Result<(), Error> {
        self.check_key(key)?;
        if let Some(value) = &value {
            self.check_value(value)?;
        }
        self.check_ahead(timestamp)?;
        self.check_watermark(timestamp)?;
        self.last = self.last.max(timestamp);
        self.write(key, &Versioned { timestamp, value });
        Ok(())
    }

    fn write(&mut self, key: &[u8], version: &Versioned) {
        for id in self.preference(key) {
            merge(
                self.servers.get_mut(&id).expect("a listed server"),
                key,
                version,
            );
        }
    }

    /// `get_versioned`, read repair included.
    pub(crate) fn get(&mut self, key: &[u8]) -> Result<Option<Versioned>, Error> {
        self.check_key(key)?;
        let list = self.preference(key);
        let newest = list
            .iter()
            .fold(None, |best, id| newer(best, self.servers[id].get(key)));

        if let Some(version) = &newest {
            let compactable = version.is_tombstone() && self.below_watermark(version.timestamp);
            if self.config.read_repair && !compactable {
                for id in &list {
                    let replica = self.servers.get_mut(id).expect("a listed server");
                    if merge(replica, key, version) != Merged::Stale {
                        self.read_repairs += 1;
                    }
                }
            }
        }
        Ok(newest)
    }

    /// `Server::apply` on `holder`.
    pub(crate) fn apply(
        &mut self,
        holder: &Holder,
        key: &[u8],
        version: &Versioned,
    ) -> Result<bool, Error> {
        self.check_key(key)?;
        if let Some(value) = &version.value {
            self.check_value(value)?;
        }
        self.check_ahead(version.timestamp)?;
        self.check_watermark(version.timestamp)?;
        self.last = self.last.max(version.timestamp);
        let contents = match holder {
            Holder::Current(id) => self.servers.get_mut(id).expect("a current server"),
            Holder::Departed(index) => &mut self.departed[*index],
        };
        Ok(merge(contents, key, version) != Merged::Stale)
    }

    // --- Membership. ---

    pub(crate) fn join(&mut self, id: &str) -> Result<Migration, Error> {
        if id.is_empty() {
            return Err(Error::EmptyServerId);
        }
        if self.servers.contains_key(id) {
            return Err(Error::DuplicateServer { id: id.to_owned() });
        }
        let mut ids = self.ids();
        ids.push(id.to_owned());
        ids.sort();
        self.servers.insert(id.to_owned(), Contents::new());
        Ok(self.change(ids, None))
    }

    pub(crate) fn leave(&mut self, id: &str) -> Result<Migration, Error> {
        if !self.servers.contains_key(id) {
            return Err(Error::UnknownServer { id: id.to_owned() });
        }
        if self.servers.len() == 1 {
            return Err(Error::LastServer { id: id.to_owned() });
        }
        let ids: Vec<String> = self.ids().into_iter().filter(|s| s != id).collect();
        Ok(self.change(ids, Some(id)))
    }

    /// Moves every key whose replica set differs between the current ring
    /// and the ring of `new_ids`, then switches to that ring.
    fn change(&mut self, new_ids: Vec<String>, leaving: Option<&str>) -> Migration {
        let old_ring = std::mem::take(&mut self.ring);
        let new_ring = vnodes_of(&new_ids, self.config.vnodes);
        let old_count = self.servers.len() - usize::from(leaving.is_none());
        let new_count = new_ids.len();
        let r = self.config.replication;

        let keys: BTreeSet<Vec<u8>> = self
            .servers
            .values()
            .flat_map(|contents| contents.keys().cloned())
            .collect();
        let mut report = Migration::default();
        let mut drops: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        for key in keys {
            let before = walk(&old_ring, old_count, r, &key);
            let after = walk(&new_ring, new_count, r, &key);
            let gainers: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
            let left: Vec<&String> = before.iter().filter(|id| !after.contains(id)).collect();
            if gainers.is_empty() && left.is_empty() {
                continue;
            }

            // The newest version any old replica holds goes to every new
            // replica that lacks it, gainers and staying replicas alike. When
            // nobody gains the key, only the replicas that drop out are read.
            let readers: Vec<&String> = if gainers.is_empty() {
                left.clone()
            } else {
                before.iter().collect()
            };
            let mut newest: Option<Versioned> = None;
            for source in readers {
                if let Some(version) = self.servers[source].get(&key) {
                    report.scanned += 1;
                    newest = newer(newest, Some(version));
                }
            }
            if let Some(newest) = newest {
                for target in &after {
                    let target = self.servers.get_mut(target).expect("a new server");
                    if merge(target, &key, &newest) == Merged::Inserted {
                        report.copied += 1;
                    }
                }
            }
            let losers: Vec<String> = left
                .into_iter()
                .filter(|id| Some(id.as_str()) != leaving)
                .cloned()
                .collect();
            drops.push((key, losers));
        }

        // Every copy happens before any drop, as in the crate.
        for (key, losers) in drops {
            for loser in losers {
                let loser = self.servers.get_mut(&loser).expect("a staying server");
                if loser.remove(&key).is_some() {
                    report.scanned += 1;
                    report.dropped += 1;
                }
            }
        }
        if let Some(leaving) = leaving {
            self.servers.remove(leaving);
            self.departed.push(Contents::new());
        }
        self.ring = new_ring;
        self.membership_changes += 1;
        report
    }

    // --- Compaction. ---

    /// First removes every entry held off its key's preference list that
    /// some replica of the key supersedes or equals; then removes each
    /// replica's tombstone older than `older_than` that every replica of its
    /// key holds or has superseded, deciding each key from one reading of its
    /// replicas.
    pub(crate) fn compact(&mut self, older_than: Timestamp) -> Result<u64, Error> {
        self.check_ahead(older_than)?;
        let watermark = self.watermark.map_or(older_than, |w| w.max(older_than));
        self.watermark = Some(watermark);
        self.last = self.last.max(watermark);

        let mut removed = 0;
        let strays: Vec<(String, Vec<u8>)> = self
            .servers
            .iter()
            .flat_map(|(id, contents)| contents.keys().map(move |key| (id.clone(), key.clone())))
            .filter(|(id, key)| !self.preference(key).contains(id))
            .collect();
        for (id, key) in strays {
            let stray = &self.servers[&id][&key];
            let superseded = self.preference(&key).iter().any(|replica| {
                self.servers[replica]
                    .get(&key)
                    .is_some_and(|held| !wins(stray, held))
            });
            if superseded {
                self.servers.get_mut(&id).expect("a server").remove(&key);
                removed += 1;
            }
        }

        let keys: BTreeSet<Vec<u8>> = self
            .servers
            .values()
            .flat_map(|contents| contents.keys().cloned())
            .collect();
        for key in keys {
            let list = self.preference(&key);
            let view: Vec<Option<Versioned>> = list
                .iter()
                .map(|id| self.servers[id].get(&key).cloned())
                .collect();
            for (id, version) in list.iter().zip(&view) {
                let Some(tombstone) = version else { continue };
                if !tombstone.is_tombstone() || tombstone.timestamp >= older_than {
                    continue;
                }
                let everyone_has_it = view
                    .iter()
                    .all(|other| other.as_ref().is_some_and(|o| !wins(tombstone, o)));
                if everyone_has_it {
                    self.servers.get_mut(id).expect("a replica").remove(&key);
                    removed += 1;
                }
            }
        }
        self.compacted += removed;
        Ok(removed)
    }

    /// Whether, right now, every key held anywhere is held by exactly its
    /// replicas, all at the same version.
    pub(crate) fn replicas_agree(&self) -> bool {
        let mut keys: BTreeMap<&[u8], Vec<(&str, &Versioned)>> = BTreeMap::new();
        for (id, contents) in &self.servers {
            for (key, version) in contents {
                keys.entry(key).or_default().push((id, version));
            }
        }
        keys.into_iter().all(|(key, holders)| {
            let list = self.preference(key);
            holders.len() == list.len()
                && holders
                    .iter()
                    .all(|(id, v)| list.iter().any(|l| l == id) && *v == holders[0].1)
        })
    }
}

/// Compares a model error with the crate's: equal, except that the horizon
/// of `TimestampTooFarAhead` (wall-clock time read at the call) only has to
/// be within a few seconds of the model's.
pub(crate) fn assert_same_error(what: &dyn fmt::Display, expected: &Error, got: &Error) {
    if let (
        Error::TimestampTooFarAhead {
            timestamp: t1,
            horizon: h1,
            max_skew: s1,
        },
        Error::TimestampTooFarAhead {
            timestamp: t2,
            horizon: h2,
            max_skew: s2,
        },
    ) = (expected, got)
    {
        assert!(
            t1 == t2 && s1 == s2 && h1.0.abs_diff(h2.0) < 5_000_000 && t2 > h2,
            "{what}: expected {expected:?}, got {got:?}"
        );
        return;
    }
    assert_eq!(expected, got, "{what}: the errors differ");
}

/// Checks that the crate and the model agree on an outcome; returns both
/// values when both succeeded.
fn agree<T: fmt::Debug, U: fmt::Debug>(
    what: &dyn fmt::Display,
    expected: Result<T, Error>,
    got: Result<U, Error>,
) -> Option<(T, U)> {
    match (expected, got) {
        (Ok(expected), Ok(got)) => Some((expected, got)),
        (Err(expected), Err(got)) => {
            assert_same_error(what, &expected, &got);
            None
        }
        (expected, got) => panic!("{what}: model says {expected:?}, crate says {got:?}"),
    }
}

/// The crate and the model side by side, plus the model-independent oracle.
pub(crate) struct Run {
    pub(crate) cluster: Cluster,
    pub(crate) model: Model,
    /// Handles of servers that left, in the order they left.
    departed: Vec<Arc<Server>>,
    /// The newest write acknowledged by `put`, `put_at`, `delete` or
    /// `delete_at`, per key.
    acked: BTreeMap<Vec<u8>, Versioned>,
    /// Keys some successful `Server::apply` wrote: the oracle skips them,
    /// since `apply` creates divergence on purpose.
    applied: BTreeSet<Vec<u8>>,
    /// Whether an `apply` ever left an entry on a server off its key's
    /// preference list.
    stray_made: bool,
    steps: usize,
}

impl Run {
    pub(crate) fn new(setup: &Setup) -> Run {
        let cluster = Cluster::new(setup.config(), setup.servers.clone())
            .expect("the generators build valid setups");
        let run = Run {
            cluster,
            model: Model::new(setup),
            departed: Vec::new(),
            acked: BTreeMap::new(),
            applied: BTreeSet::new(),
            stray_made: false,
            steps: 0,
        };
        run.check();
        run
    }

    /// Runs every operation, checking after each.
    pub(crate) fn run(setup: &Setup, ops: &[Op]) {
        let mut run = Run::new(setup);
        for op in ops {
            run.step(op);
        }
    }

    fn resolve(&self, at: At) -> Timestamp {
        match at {
            At::Past(n) => Timestamp(u64::from(n)),
            At::AboveWatermark(n) => Timestamp(self.model.watermark().0 + u64::from(n)),
            At::Recent(n) => Timestamp((self.model.last().0 + 1).saturating_sub(u64::from(n))),
            At::Ahead => Timestamp(Timestamp::wall().0 + 10_000_000),
            At::TooFar => Timestamp(Timestamp::wall().0 + 120_000_000),
            At::Max => Timestamp(u64::MAX),
        }
    }

    fn ack(&mut self, key: &[u8], version: Versioned) {
        let newest = newer(self.acked.remove(key), Some(&version)).expect("one is given");
        self.acked.insert(key.to_vec(), newest);
    }

    /// Applies `op` to the crate and the model and checks they agree.
    pub(crate) fn step(&mut self, op: &Op) {
        self.steps += 1;
        let what = format!("step {} {op:?}", self.steps);
        match *op {
            Op::Put { key, value } => {
                let (key, value) = (key_of(key), value_of(value));
                let expected = self.model.check_stamped(key, Some(&value));
                let got = self.cluster.put(key, value.clone());
                if let Some(((), timestamp)) = agree(&what, expected, got) {
                    assert!(timestamp > self.model.last(), "{what}: stamp not fresh");
                    self.model.stamped(key, Some(value.clone()), timestamp);
                    let value = Some(value);
                    self.ack(key, Versioned { timestamp, value });
                }
            }
            Op::Delete { key } => {
                let key = key_of(key);
                let expected = self.model.check_stamped(key, None);
                let got = self.cluster.delete(key);
                if let Some(((), timestamp)) = agree(&what, expected, got) {
                    assert!(timestamp > self.model.last(), "{what}: stamp not fresh");
                    self.model.stamped(key, None, timestamp);
                    self.ack(
                        key,
                        Versioned {
                            timestamp,
                            value: None,
                        },
                    );
                }
            }
            Op::PutAt { key, value, at } => {
                let (key, value, timestamp) = (key_of(key), value_of(value), self.resolve(at));
                let expected = self.model.write_at(key, Some(value.clone()), timestamp);
                let got = self.cluster.put_at(key, value.clone(), timestamp);
                if agree(&what, expected, got).is_some() {
                    let value = Some(value);
                    self.ack(key, Versioned { timestamp, value });
                }
            }
            Op::DeleteAt { key, at } => {
                let (key, timestamp) = (key_of(key), self.resolve(at));
                let expected = self.model.write_at(key, None, timestamp);
                let got = self.cluster.delete_at(key, timestamp);
                if agree(&what, expected, got).is_some() {
                    self.ack(
                        key,
                        Versioned {
                            timestamp,
                            value: None,
                        },
                    );
                }
            }
            Op::Get { key, versioned } => {
                let key = key_of(key);
                let expected = self.model.get(key);
                if versioned {
                    let got = self.cluster.get_versioned(key);
                    if let Some((expected, got)) = agree(&what, expected, got) {
                        assert_eq!(expected, got, "{what}: get_versioned differs");
                    }
                } else {
                    let got = self.cluster.get(key);
                    if let Some((expected, got)) = agree(&what, expected, got) {
                        assert_eq!(expected.and_then(|v| v.value), got, "{what}: get differs");
                    }
                }
            }
            Op::Apply {
                target,
                key,
                value,
                at,
            } => {
                let key = key_of(key);
                let version = Versioned {
                    timestamp: self.resolve(at),
                    value: value.map(value_of),
                };
                let (holder, server) = self.target(target, key);
                let expected = self.model.apply(&holder, key, &version);
                let got = server.apply(key, version.clone());
                if let Some((expected, got)) = agree(&what, expected, got) {
                    assert_eq!(expected, got, "{what}: apply's outcome differs");
                    if let Holder::Current(id) = &holder {
                        self.applied.insert(key.to_vec());
                        if got && !self.model.preference(key).contains(id) {
                            self.stray_made = true;
                        }
                    }
                }
            }
            Op::Join { id } => {
                let id = id_of(id);
                let agreed = self.model.replicas_agree();
                let expected = self.model.join(id);
                let got = self.cluster.join(id);
                if let Some((expected, got)) = agree(&what, expected, got) {
                    self.check_migration(&what, expected, got, agreed);
                }
            }
            Op::Leave { id } => {
                let id = id_of(id);
                let agreed = self.model.replicas_agree();
                let handle = self.cluster.server(id);
                let expected = self.model.leave(id);
                let got = self.cluster.leave(id);
                if let Some((expected, got)) = agree(&what, expected, got) {
                    // Below R servers nobody gains the leaving server's
                    // ranges, and the leave reads what it hands to the
                    // servers that stay, though they usually hold it already.
                    let below_r = self.model.ids().len() < self.cluster.config().replication;
                    self.check_migration(&what, expected, got, agreed && !below_r);
                    self.departed
                        .push(handle.expect("a server that left was found before"));
                }
            }
            Op::Compact { older_than } => {
                let older_than = self.resolve(older_than);
                let expected = self.model.compact(older_than);
                let got = self.cluster.compact(older_than);
                if let Some((expected, got)) = agree(&what, expected, got) {
                    assert_eq!(expected, got, "{what}: entries compacted differ");
                }
            }
        }
        self.check_with(&what);
    }

    /// The model holder and crate handle `target` names for `key`.
    fn target(&self, target: Target, key: &[u8]) -> (Holder, Arc<Server>) {
        let pick = |ids: &[String], n: u8| ids[n as usize % ids.len()].clone();
        let id = match target {
            Target::Replica(n) => pick(&self.model.preference(key), n),
            Target::Departed(n) if !self.departed.is_empty() => {
                let index = n as usize % self.departed.len();
                return (Holder::Departed(index), Arc::clone(&self.departed[index]));
            }
            Target::Server(n) | Target::Departed(n) => pick(&self.model.ids(), n),
        };
        let server = self.cluster.server(&id).expect("a current server is found");
        (Holder::Current(id), server)
    }

    fn check_migration(&self, what: &str, expected: Migration, got: Migration, agreed: bool) {
        assert_eq!(expected, got, "{what}: the migration report differs");
        if agreed {
            // The documented bound, when replicas agree.
            let r = self.cluster.config().replication as u64;
            assert!(
                got.scanned <= (r + 1) * (got.copied + got.dropped),
                "{what}: scanned {} above (R + 1) * (copied + dropped) for {got:?}",
                got.scanned
            );
        }
    }

    /// Checks the crate against the model and the oracle's invariants.
    pub(crate) fn check(&self) {
        self.check_with(&"initial state");
    }

    fn check_with(&self, what: &dyn fmt::Display) {
        let cluster = &self.cluster;
        let model = &self.model;

        let ids = model.ids();
        assert_eq!(cluster.servers(), ids, "{what}: server lists differ");
        for id in IDS {
            if !id.is_empty() && !ids.iter().any(|s| s == id) {
                assert!(cluster.server(id).is_none(), "{what}: {id} still found");
            }
        }

        let mut held: BTreeMap<String, Contents> = BTreeMap::new();
        for id in &ids {
            let server = cluster.server(id).expect("a listed server is found");
            let contents: Contents = server.entries().map(|(k, v)| (k.to_vec(), v)).collect();
            assert_eq!(&contents, model.contents(id), "{what}: server {id} differs");
            assert_eq!(server.len(), contents.len(), "{what}: {id}'s len()");
            for key in KEYS {
                let expected = model.contents(id).get(*key);
                assert_eq!(server.get(key).as_ref(), expected, "{what}: {id}'s {key:?}");
            }
            held.insert(id.clone(), contents);
        }
        for (index, (handle, expected)) in self.departed.iter().zip(model.departed()).enumerate() {
            let contents: Contents = handle.entries().map(|(k, v)| (k.to_vec(), v)).collect();
            assert_eq!(
                &contents, expected,
                "{what}: departed server #{index} differs"
            );
        }

        let stats = cluster.stats();
        assert_eq!(
            stats.read_repairs, model.read_repairs,
            "{what}: read_repairs"
        );
        assert_eq!(
            stats.membership_changes, model.membership_changes,
            "{what}: membership_changes"
        );
        assert_eq!(stats.compacted, model.compacted, "{what}: compacted");
        assert_eq!(stats.watermark, model.watermark(), "{what}: watermark");
        assert_eq!(cluster.last_timestamp(), model.last, "{what}: clock");

        for key in KEYS {
            assert_eq!(
                cluster.replicas(key),
                model.preference(key),
                "{what}: preference list of {key:?}"
            );
        }

        self.check_oracle(what, &held);
    }

    /// The invariants that do not depend on the model.
    fn check_oracle(&self, what: &dyn fmt::Display, held: &BTreeMap<String, Contents>) {
        let watermark = self.cluster.stats().watermark;
        for key in KEYS {
            let list = self.cluster.replicas(key);
            let holders: Vec<(&String, &Versioned)> = held
                .iter()
                .filter_map(|(id, contents)| Some((id, contents.get(*key)?)))
                .collect();

            if !self.stray_made {
                for (id, _) in &holders {
                    assert!(
                        list.iter().any(|l| l == *id),
                        "{what}: {id} holds {key:?} off its preference list {list:?}"
                    );
                }
            }
            if self.applied.contains(*key) {
                continue;
            }

            match self.acked.get(*key) {
                None => assert!(holders.is_empty(), "{what}: {key:?} held, never written"),
                Some(newest) => {
                    let everywhere = holders.len() == list.len()
                        && holders.iter().all(|(_, version)| *version == newest);
                    let compacted =
                        holders.is_empty() && newest.is_tombstone() && newest.timestamp < watermark;
                    assert!(
                        everywhere || compacted,
                        "{what}: {key:?} lost: newest acknowledged {newest:?}, \
                         replicas {list:?}, held {holders:?}"
                    );
                }
            }
        }
    }
}

/// Decodes fuzzer bytes into a setup and up to 64 operations. Every byte
/// string decodes to something; bytes past the end read as zero.
pub(crate) fn decode(bytes: &[u8]) -> (Setup, Vec<Op>) {
    let mut input = Bytes::copy_from_slice(bytes);
    let mut next = move || -> u8 {
        if input.is_empty() {
            0
        } else {
            let byte = input[0];
            input = input.slice(1..);
            byte
        }
    };

    let shape = next();
    let count = usize::from(shape % 5) + 1;
    let first = usize::from(next()) % (IDS.len() - 1);
    let servers: Vec<String> = (0..count)
        .map(|i| IDS[1 + (first + i) % (IDS.len() - 1)].to_owned())
        .collect();
    let setup = Setup {
        vnodes: usize::from(shape / 5 % 4) + 1,
        replication: usize::from(shape / 20 % 4) + 1,
        servers,
        read_repair: shape & 0x80 == 0,
    };

    let ops_len = (bytes.len().saturating_sub(2) / 4).min(64);
    let mut ops = Vec::with_capacity(ops_len);
    for _ in 0..ops_len {
        let (kind, a, b, c) = (next(), next(), next(), next());
        let at = decode_at(c);
        let op = match kind % 16 {
            0..=2 => Op::Put { key: a, value: b },
            3 => Op::PutAt {
                key: a,
                value: b,
                at,
            },
            4 | 5 => Op::Delete { key: a },
            6 => Op::DeleteAt { key: a, at },
            7..=9 => Op::Get {
                key: a,
                versioned: b & 1 == 1,
            },
            10 | 11 => Op::Apply {
                target: match kind >> 4 & 3 {
                    0 | 1 => Target::Replica(b >> 4),
                    2 => Target::Server(b >> 4),
                    _ => Target::Departed(b >> 4),
                },
                key: a,
                value: (kind & 0x40 == 0).then_some(b & 0x0f),
                at,
            },
            12 => Op::Join { id: a },
            13 => Op::Leave { id: a },
            _ => Op::Compact { older_than: at },
        };
        ops.push(op);
    }
    (setup, ops)
}

fn decode_at(byte: u8) -> At {
    let n = u16::from(byte >> 3);
    match byte & 7 {
        0 | 1 => At::Past(n * 64),
        2 | 3 => At::AboveWatermark(n),
        4 | 5 => At::Recent(n),
        6 => match n % 3 {
            0 => At::Ahead,
            1 => At::TooFar,
            _ => At::Max,
        },
        _ => At::Past(n),
    }
}
