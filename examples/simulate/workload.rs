//! The keys, the client threads, and what each client knows it wrote.
//!
//! Key `g` (an index into [`Keyspace::keys`]) belongs to client `g % threads`;
//! only its owner writes it, so the owner knows the last acknowledged version
//! of each of its keys exactly. Any client may read any key.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv::{Bytes, Cluster, Error, Timestamp, Versioned};

use crate::stats::{Latencies, Op};

/// Operations a client does between two updates of the shared progress.
const BATCH: u64 = 256;

/// How many bad reads or lost keys a client keeps as examples.
const EXAMPLES: usize = 5;

/// The keys of a run and the timestamp of the last acknowledged write of
/// each, which owners publish so that readers can check freshness.
pub(crate) struct Keyspace {
    pub(crate) keys: Vec<String>,
    /// `acked[g]`: the timestamp of the last write of key `g` that its owner
    /// saw acknowledged, 0 before the first.
    acked: Vec<AtomicU64>,
    threads: usize,
}

impl Keyspace {
    /// `count` distinct keys drawn from `seed`, shared by `threads` clients.
    pub(crate) fn generate(count: usize, threads: usize, seed: u64) -> Keyspace {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seen = HashSet::with_capacity(count);
        let mut keys = Vec::with_capacity(count);
        while keys.len() < count {
            let id: u64 = rng.gen();
            if seen.insert(id) {
                keys.push(format!("user:{id:016x}"));
            }
        }
        Keyspace {
            acked: (0..count).map(|_| AtomicU64::new(0)).collect(),
            keys,
            threads,
        }
    }

    fn owner(&self, key: usize) -> usize {
        key % self.threads
    }
}

/// What the clients of the mixed phase and the churn thread share.
#[derive(Default)]
pub(crate) struct Mixed {
    /// Operations done so far by all clients, updated every [`BATCH`].
    pub(crate) done: AtomicU64,
    /// Set while a join or leave runs; clients file their latencies by it.
    pub(crate) changing: AtomicBool,
    /// Set when the churn thread has made its last change (or given up);
    /// clients keep going past their quota until then, so every change
    /// runs under load.
    pub(crate) churn_finished: AtomicBool,
    /// Set by a client that failed, so nobody waits for it.
    pub(crate) failed: AtomicBool,
}

/// A read of the mixed phase that returned something older than a write
/// acknowledged before it began.
#[derive(Debug)]
pub(crate) struct StaleRead {
    pub(crate) key: String,
    /// The oldest timestamp the read could correctly return.
    pub(crate) floor: Timestamp,
    pub(crate) found: Option<Timestamp>,
}

/// A key whose read-back differs from its last acknowledged write.
#[derive(Debug)]
pub(crate) struct LostKey {
    pub(crate) key: String,
    pub(crate) expected: Timestamp,
    pub(crate) found: Option<Timestamp>,
}

/// One client thread's state: its keys, what it wrote, what it measured.
pub(crate) struct Client<'a> {
    cluster: &'a Cluster,
    keyspace: &'a Keyspace,
    thread: usize,
    rng: StdRng,
    value_size: usize,
    /// Indices of the keys this client owns.
    owned: Vec<usize>,
    /// `written[i]`: the last acknowledged version of key `owned[i]`.
    written: Vec<(Timestamp, Bytes)>,
    pub(crate) latencies: Latencies,
    /// Reads of the mixed phase whose freshness was checked.
    pub(crate) reads_checked: u64,
    pub(crate) stale_reads: u64,
    pub(crate) stale_examples: Vec<StaleRead>,
}

impl<'a> Client<'a> {
    pub(crate) fn new(
        cluster: &'a Cluster,
        keyspace: &'a Keyspace,
        thread: usize,
        seed: u64,
        value_size: usize,
    ) -> Client<'a> {
        // A distinct, reproducible stream per client.
        let stream = seed ^ (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Client {
            cluster,
            keyspace,
            thread,
            rng: StdRng::seed_from_u64(stream),
            value_size,
            owned: (thread..keyspace.keys.len())
                .step_by(keyspace.threads)
                .collect(),
            written: Vec::new(),
            latencies: Latencies::new(),
            reads_checked: 0,
            stale_reads: 0,
            stale_examples: Vec::new(),
        }
    }

    /// Writes every owned key once.
    pub(crate) fn load(&mut self, progress: &ProgressBar) -> Result<(), Error> {
        self.written.reserve_exact(self.owned.len());
        for slot in 0..self.owned.len() {
            let key = self.owned[slot];
            let value = self.value();
            let started = Instant::now();
            let timestamp = self.cluster.put(&self.keyspace.keys[key], value.clone())?;
            self.latencies.record(Op::LoadPut, started.elapsed());
            self.acknowledge(key, timestamp);
            self.written.push((timestamp, value));

            if slot as u64 % BATCH == BATCH - 1 {
                progress.inc(BATCH);
            }
        }
        progress.inc(self.owned.len() as u64 % BATCH);
        Ok(())
    }

    /// Runs `quota` random gets and puts (gets with probability
    /// `read_share`), then keeps going until the churn thread is done.
    /// Every get is checked for freshness.
    pub(crate) fn mixed(
        &mut self,
        quota: u64,
        read_share: f64,
        shared: &Mixed,
        progress: &ProgressBar,
    ) -> Result<(), Error> {
        let result = self.mixed_loop(quota, read_share, shared, progress);
        if result.is_err() {
            shared.failed.store(true, Ordering::Relaxed);
        }
        result
    }

    fn mixed_loop(
        &mut self,
        quota: u64,
        read_share: f64,
        shared: &Mixed,
        progress: &ProgressBar,
    ) -> Result<(), Error> {
        let mut done = 0u64;
        loop {
            if done >= quota
                && (shared.churn_finished.load(Ordering::Relaxed)
                    || shared.failed.load(Ordering::Relaxed))
            {
                break;
            }

            let changing = shared.changing.load(Ordering::Relaxed);
            if self.owned.is_empty() || self.rng.gen_bool(read_share) {
                let key = self.rng.gen_range(0..self.keyspace.keys.len());
                let op = if changing {
                    Op::GetDuringChange
                } else {
                    Op::Get
                };
                self.checked_get(key, op)?;
            } else {
                let slot = self.rng.gen_range(0..self.owned.len());
                let op = if changing {
                    Op::PutDuringChange
                } else {
                    Op::Put
                };
                self.put(slot, op)?;
            }

            done += 1;
            if done % BATCH == 0 {
                shared.done.fetch_add(BATCH, Ordering::Relaxed);
                if done <= quota {
                    progress.inc(BATCH);
                }
            }
        }
        shared.done.fetch_add(done % BATCH, Ordering::Relaxed);
        progress.inc(quota % BATCH);
        Ok(())
    }

    /// Overwrites owned key `owned[slot]` with a fresh value.
    fn put(&mut self, slot: usize, op: Op) -> Result<(), Error> {
        let key = self.owned[slot];
        let value = self.value();
        let started = Instant::now();
        let timestamp = self.cluster.put(&self.keyspace.keys[key], value.clone())?;
        self.latencies.record(op, started.elapsed());
        self.acknowledge(key, timestamp);
        self.written[slot] = (timestamp, value);
        Ok(())
    }

    /// Reads key `key` and checks the answer: never older than the owner's
    /// last acknowledged write before the read began, never missing (no key
    /// is deleted), and, for an owned key, exactly what this client wrote.
    fn checked_get(&mut self, key: usize, op: Op) -> Result<(), Error> {
        // Acquire pairs with the owner's Release in `acknowledge`: the
        // acknowledged write happens-before this get begins.
        let floor = Timestamp(self.keyspace.acked[key].load(Ordering::Acquire));
        let started = Instant::now();
        let found = self.cluster.get_versioned(&self.keyspace.keys[key])?;
        self.latencies.record(op, started.elapsed());

        let fresh = match &found {
            None => false,
            Some(version) if self.keyspace.owner(key) == self.thread => {
                let slot = key / self.keyspace.threads;
                self.matches_written(slot, version)
            }
            Some(version) => version.timestamp >= floor && !version.is_tombstone(),
        };
        self.reads_checked += 1;
        if !fresh {
            self.stale_reads += 1;
            if self.stale_examples.len() < EXAMPLES {
                self.stale_examples.push(StaleRead {
                    key: self.keyspace.keys[key].clone(),
                    floor,
                    found: found.map(|version| version.timestamp),
                });
            }
        }
        Ok(())
    }

    /// Reads back every owned key and returns those that differ from the
    /// last acknowledged write (at most [`EXAMPLES`] of them) and their count.
    pub(crate) fn verify(&mut self, progress: &ProgressBar) -> Result<(u64, Vec<LostKey>), Error> {
        let mut lost = 0u64;
        let mut examples = Vec::new();
        for slot in 0..self.owned.len() {
            let key = self.owned[slot];
            let started = Instant::now();
            let found = self.cluster.get_versioned(&self.keyspace.keys[key])?;
            self.latencies.record(Op::VerifyGet, started.elapsed());

            let intact = matches!(&found, Some(version) if self.matches_written(slot, version));
            if !intact {
                lost += 1;
                if examples.len() < EXAMPLES {
                    examples.push(LostKey {
                        key: self.keyspace.keys[key].clone(),
                        expected: self.written[slot].0,
                        found: found.map(|version| version.timestamp),
                    });
                }
            }

            if slot as u64 % BATCH == BATCH - 1 {
                progress.inc(BATCH);
            }
        }
        progress.inc(self.owned.len() as u64 % BATCH);
        Ok((lost, examples))
    }

    fn matches_written(&self, slot: usize, version: &Versioned) -> bool {
        let (timestamp, value) = &self.written[slot];
        version.timestamp == *timestamp && version.value.as_ref() == Some(value)
    }

    /// Publishes that the write of `key` at `timestamp` was acknowledged.
    fn acknowledge(&self, key: usize, timestamp: Timestamp) {
        // Release pairs with the Acquire load in `checked_get`.
        self.keyspace.acked[key].store(timestamp.0, Ordering::Release);
    }

    /// A fresh value of `value_size` random bytes.
    fn value(&mut self) -> Bytes {
        let mut bytes = vec![0u8; self.value_size];
        self.rng.fill(&mut bytes[..]);
        Bytes::from(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringkv::Config;

    #[test]
    fn verify_finds_nothing_lost_after_a_clean_load() {
        let cluster = Cluster::new(Config::default(), ["a", "b", "c"]).unwrap();
        let keyspace = Keyspace::generate(100, 2, 7);
        let mut client = Client::new(&cluster, &keyspace, 1, 7, 16);
        client.load(&ProgressBar::hidden()).unwrap();

        let (lost, examples) = client.verify(&ProgressBar::hidden()).unwrap();
        assert_eq!(lost, 0, "{examples:?}");
    }

    #[test]
    fn verify_reports_a_key_whose_newest_version_is_not_the_acknowledged_one() {
        let cluster = Cluster::new(Config::default(), ["a", "b", "c"]).unwrap();
        let keyspace = Keyspace::generate(100, 2, 7);
        let mut client = Client::new(&cluster, &keyspace, 1, 7, 16);
        client.load(&ProgressBar::hidden()).unwrap();

        // Client 1 owns key 1; a newer version appears behind its back.
        let key = &keyspace.keys[1];
        let replica = cluster.replicas(key)[0].clone();
        let newer = Versioned {
            timestamp: Timestamp(cluster.last_timestamp().0 + 1),
            value: Some(Bytes::from_static(b"someone else")),
        };
        cluster
            .server(replica.as_str())
            .unwrap()
            .apply(key, newer)
            .unwrap();

        let (lost, examples) = client.verify(&ProgressBar::hidden()).unwrap();
        assert_eq!(lost, 1);
        assert_eq!(&examples[0].key, key);
    }

    #[test]
    fn keys_are_distinct_and_reproducible_from_the_seed() {
        let first = Keyspace::generate(1000, 3, 42);
        let again = Keyspace::generate(1000, 3, 42);
        let other = Keyspace::generate(1000, 3, 43);
        assert_eq!(first.keys, again.keys);
        assert_ne!(first.keys, other.keys);
        let distinct: HashSet<&String> = first.keys.iter().collect();
        assert_eq!(distinct.len(), 1000);
    }
}
