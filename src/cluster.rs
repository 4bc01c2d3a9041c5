//! The cluster: the data path (put, get, delete) and membership changes.

use std::fmt;
use std::sync::{Arc as StdArc, PoisonError};

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::compaction::{self, Watermark};
use crate::config::{Config, MAX_SERVERS};
use crate::error::Error;
use crate::migration::{Migration, Transition};
use crate::ring::{ring_position, Ring, ServerId};
use crate::snapshot::{publish, Placement, Snapshot};
use crate::store::{EntryKey, Merge, Server, Shared};
use crate::sync::{Arc, ArcCell, ArcGuard, AtomicU64, Mutex, Ordering};
use crate::version::Versioned;

/// Counters a user can read while the cluster runs.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Replica writes made by read repair: each time a `get` found a replica
    /// stale or missing and the newest version won there.
    pub read_repairs: u64,
    /// Completed `join` and `leave` calls.
    pub membership_changes: u64,
    /// Entries removed by [`Cluster::compact`]: tombstones, and strays the
    /// replicas superseded.
    pub compacted: u64,
    /// The compaction watermark, the highest cutoff [`Cluster::compact`] ran
    /// with: client writes at or below it are refused. `Timestamp(0)` before
    /// the first compaction, when no timestamp is refused.
    pub watermark: Timestamp,
}

/// A replicated key-value store on a consistent-hashing ring of simulated
/// servers.
///
/// `Cluster` is `Send + Sync`; share it as `Arc<Cluster>`. The data path
/// ([`put`](Cluster::put), [`get`](Cluster::get), [`delete`](Cluster::delete)
/// and their variants) takes no lock and never waits: each call loads the
/// current ring snapshot once, works on the key's replicas, and lets it go.
/// Membership changes ([`join`](Cluster::join), [`leave`](Cluster::leave))
/// run one at a time and may wait for in-flight operations to finish; they
/// never lose or hide a write that races them. The crate documentation lists
/// the guarantees; the docs of the `migration` module in the source argue
/// them.
///
/// # Examples
///
/// ```
/// use ringkv::{Cluster, Config};
///
/// let cluster = Cluster::new(Config::default(), ["a", "b", "c", "d"])?;
/// cluster.put("user:1", "ada")?;
/// assert_eq!(cluster.get("user:1")?.as_deref(), Some(&b"ada"[..]));
///
/// let moved = cluster.join("e")?;
/// assert_eq!(cluster.get("user:1")?.as_deref(), Some(&b"ada"[..]));
/// assert!(moved.scanned >= moved.copied);
/// # Ok::<(), ringkv::Error>(())
/// ```
pub struct Cluster {
    shared: StdArc<Shared>,
    snapshot: ArcCell<Snapshot>,
    membership: Mutex<()>,
    read_repairs: AtomicU64,
    membership_changes: AtomicU64,
    compacted: AtomicU64,
}

impl Cluster {
    /// Builds a cluster of `servers` (ids, in any order) under `config`.
    ///
    /// Fails, building nothing, if the configuration is invalid (zero or too
    /// many vnodes, zero replication), the list is empty or longer than
    /// [`MAX_SERVERS`], or an id is empty or repeated.
    ///
    /// Cost: K·N MD5s and a sort to build the ring.
    pub fn new<I>(config: Config, servers: I) -> Result<Cluster, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        config.validate()?;
        let mut ids: Vec<ServerId> = Vec::new();
        for id in servers {
            let id: String = id.into();
            if id.is_empty() {
                return Err(Error::EmptyServerId);
            }
            ids.push(ServerId::from(id));
        }
        if ids.is_empty() {
            return Err(Error::NoServers);
        }
        if ids.len() > MAX_SERVERS {
            return Err(Error::TooManyServers {
                count: ids.len(),
                max: MAX_SERVERS,
            });
        }
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Error::DuplicateServer {
                id: pair[0].to_string(),
            });
        }

        let shared = StdArc::new(Shared::new(config));
        let servers: Vec<StdArc<Server>> = ids
            .iter()
            .map(|id| StdArc::new(Server::new(id.clone(), StdArc::clone(&shared))))
            .collect();
        let placement = Placement {
            ring: StdArc::new(Ring::new(
                ids.into_boxed_slice(),
                shared.config.vnodes,
                shared.config.replication,
            )),
            servers: servers.into(),
        };
        Ok(Cluster {
            shared,
            snapshot: ArcCell::new(Arc::new(Snapshot::stable(placement, Watermark::NONE))),
            membership: Mutex::new(()),
            read_repairs: AtomicU64::new(0),
            membership_changes: AtomicU64::new(0),
            compacted: AtomicU64::new(0),
        })
    }

    /// The configuration the cluster was built with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Writes `value` under `key` on every replica, stamped with a fresh
    /// timestamp from the cluster's clock, and returns that timestamp.
    ///
    /// When it returns, every replica of the key holds this version or a
    /// newer one, and no membership change can lose it.
    ///
    /// Cost: one MD5, one binary search over the ring, and one hash-table
    /// lookup per replica, plus a hash-table and a skiplist insert per
    /// replica for a key it did not hold; lock-free.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl Into<Bytes>) -> Result<Timestamp, Error> {
        let key = key.as_ref();
        let value = value.into();
        self.shared.check_key(key)?;
        self.shared.check_value(&value)?;

        let snapshot = self.snapshot.load();
        // Stamped after loading the snapshot, so the timestamp is above the
        // watermark the snapshot carries (see `crate::compaction`).
        let timestamp = self.shared.clock.now();
        write(&snapshot, key, Some(value), timestamp);
        Ok(timestamp)
    }

    /// Writes `value` under `key` with a client timestamp, under the same
    /// last-write-wins rule: replicas holding a newer version keep it.
    ///
    /// Refuses a timestamp more than
    /// [`Config::max_clock_skew`](crate::Config::max_clock_skew) ahead of wall-clock
    /// time, or at or below the compaction watermark (see
    /// [`compact`](Cluster::compact)). Advances the cluster's clock past
    /// `timestamp`, so a later [`put`](Cluster::put) wins over this one.
    pub fn put_at(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<Bytes>,
        timestamp: Timestamp,
    ) -> Result<(), Error> {
        let key = key.as_ref();
        let value = value.into();
        self.shared.check_key(key)?;
        self.shared.check_value(&value)?;
        self.shared.check_timestamp(timestamp)?;

        let snapshot = self.snapshot.load();
        snapshot.watermark.check(timestamp)?;
        self.shared.clock.observe(timestamp);
        write(&snapshot, key, Some(value), timestamp);
        Ok(())
    }

    /// Deletes `key`: writes a tombstone, stamped by the cluster's clock, to
    /// every replica, and returns its timestamp. An older write arriving later
    /// does not bring the key back.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<Timestamp, Error> {
        let key = key.as_ref();
        self.shared.check_key(key)?;

        let snapshot = self.snapshot.load();
        let timestamp = self.shared.clock.now();
        write(&snapshot, key, None, timestamp);
        Ok(timestamp)
    }

    /// Deletes `key` with a client timestamp; see [`put_at`](Cluster::put_at).
    pub fn delete_at(&self, key: impl AsRef<[u8]>, timestamp: Timestamp) -> Result<(), Error> {
        let key = key.as_ref();
        self.shared.check_key(key)?;
        self.shared.check_timestamp(timestamp)?;

        let snapshot = self.snapshot.load();
        snapshot.watermark.check(timestamp)?;
        self.shared.clock.observe(timestamp);
        write(&snapshot, key, None, timestamp);
        Ok(())
    }

    /// The newest value of `key` across its replicas; `None` if no replica
    /// holds it or the newest version is a tombstone.
    ///
    /// Never older than a write acknowledged before the call began, and never
    /// older than what an earlier `get` of the key returned, even while a
    /// membership change is in flight. The returned [`Bytes`] shares the
    /// stored buffer; nothing is copied.
    ///
    /// With [`Config::read_repair`](crate::Config::read_repair) on, replicas found
    /// stale or missing are sent the newest version before it returns.
    ///
    /// Cost: one MD5, one binary search, one hash-table lookup per replica;
    /// lock-free.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, Error> {
        Ok(self.get_versioned(key)?.and_then(|version| version.value))
    }

    /// Like [`get`](Cluster::get), but returns the newest version itself,
    /// tombstone included, with its timestamp.
    pub fn get_versioned(&self, key: impl AsRef<[u8]>) -> Result<Option<Versioned>, Error> {
        let key = key.as_ref();
        self.shared.check_key(key)?;
        let entry_key = EntryKey::new(ring_position(key), key);

        let snapshot = self.snapshot.load();
        let mut newest: Option<ArcGuard<Versioned>> = None;
        let mut agree = true;
        let mut replicas = 0usize;
        snapshot.for_each_replica(entry_key.position(), |server| {
            replicas += 1;
            let found = server.load(&entry_key);
            match (&newest, found) {
                (None, None) => {}
                (None, Some(found)) => {
                    // An earlier replica held nothing.
                    agree &= replicas == 1;
                    newest = Some(found);
                }
                (Some(_), None) => agree = false,
                (Some(best), Some(found)) => {
                    if !Arc::ptr_eq(best, &found) {
                        agree = false;
                        if found.supersedes(best) {
                            newest = Some(found);
                        }
                    }
                }
            }
        });

        if let (false, Some(version)) = (agree, &newest) {
            // A tombstone at or below the watermark is one compaction may be
            // removing; spreading it again would only undo that work.
            let compactable =
                version.is_tombstone() && snapshot.watermark.covers(version.timestamp);
            if self.shared.config.read_repair && !compactable {
                self.repair(&snapshot, &entry_key, version);
            }
        }
        Ok(newest.map(|version| Versioned::clone(&version)))
    }

    /// Read repair: a write of the newest version to the replicas that lack
    /// it, made under the snapshot the read used, so it follows the same
    /// rules as a put.
    fn repair(&self, snapshot: &Snapshot, entry_key: &EntryKey, version: &Arc<Versioned>) {
        let mut repaired = 0u64;
        snapshot.for_each_replica(entry_key.position(), |server| {
            if server.merge(entry_key, version) != Merge::Stale {
                repaired += 1;
            }
        });
        if repaired > 0 {
            // A statistic only; nothing is published through it.
            self.read_repairs.fetch_add(repaired, Ordering::Relaxed);
        }
    }

    /// Adds a server and moves to it the ranges it now replicates.
    ///
    /// Only the ring ranges whose replica set changes are read. Waits for
    /// other membership changes and for in-flight operations on the previous
    /// ring; puts and gets keep running throughout. When it returns, every
    /// acknowledged write is on all of its key's replicas and no entry lives
    /// outside its key's preference list.
    ///
    /// Fails, changing nothing, if the id is empty or already in the cluster,
    /// or the cluster is full.
    pub fn join(&self, server: impl Into<String>) -> Result<Migration, Error> {
        let id = server.into();
        if id.is_empty() {
            return Err(Error::EmptyServerId);
        }
        let _serial = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        let (old, watermark) = self.stable();
        if old.server(&id).is_some() {
            return Err(Error::DuplicateServer { id });
        }
        let count = old.ring.servers().len() + 1;
        if count > MAX_SERVERS {
            return Err(Error::TooManyServers {
                count,
                max: MAX_SERVERS,
            });
        }

        let joining = StdArc::new(Server::new(ServerId::from(id), StdArc::clone(&self.shared)));
        let mut servers: Vec<StdArc<Server>> = old.servers.to_vec();
        servers.push(joining);
        let new = self.placement(servers);
        let migration = Transition::begin(&self.snapshot, old, new, None, watermark).finish();
        self.membership_changes.fetch_add(1, Ordering::Relaxed);
        Ok(migration)
    }

    /// Removes a server after moving its ranges to the servers that take
    /// them over.
    ///
    /// Same guarantees and cost as [`join`](Cluster::join). Until it returns,
    /// [`server`](Cluster::server) still finds the leaving server; afterwards
    /// the leaving server holds nothing.
    ///
    /// Fails, changing nothing, if the server is not in the cluster or is the
    /// last one.
    pub fn leave(&self, server: &str) -> Result<Migration, Error> {
        let _serial = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        let (old, watermark) = self.stable();
        let Some(leaving) = old.server(server).cloned() else {
            return Err(Error::UnknownServer {
                id: server.to_owned(),
            });
        };
        if old.ring.servers().len() == 1 {
            return Err(Error::LastServer {
                id: server.to_owned(),
            });
        }

        let servers: Vec<StdArc<Server>> = old
            .servers
            .iter()
            .filter(|s| !StdArc::ptr_eq(s, &leaving))
            .cloned()
            .collect();
        let new = self.placement(servers);
        let migration =
            Transition::begin(&self.snapshot, old, new, Some(leaving), watermark).finish();
        self.membership_changes.fetch_add(1, Ordering::Relaxed);
        Ok(migration)
    }

    /// The current placement and watermark. Only called with the membership
    /// mutex held, when no change is in flight.
    fn stable(&self) -> (Placement, Watermark) {
        let snapshot = self.snapshot.load();
        debug_assert!(snapshot.previous.is_none());
        (snapshot.current.clone(), snapshot.watermark)
    }

    /// Removes tombstones older than `older_than` that every current replica
    /// of their key holds (or has superseded), and returns how many entries
    /// it removed.
    ///
    /// It also removes *strays*, entries a server holds off their key's
    /// preference list (only [`Server::apply`] creates them), when a replica
    /// of the key holds the same version or a newer one; they are counted in
    /// the result. Strays newer than everything the replicas hold stay.
    ///
    /// From the moment it starts, client writes (`put_at`, `delete_at`,
    /// [`Server::apply`]) with a timestamp at or below `older_than` are
    /// refused with [`Error::TimestampCompacted`], so a late, old write cannot
    /// bring a purged key back; the clock moves past `older_than`, so
    /// clock-stamped writes are unaffected. The watermark never goes down: a
    /// smaller cutoff than an earlier one compacts at the smaller cutoff and
    /// leaves the watermark where it was.
    ///
    /// Never resurrects data: a replica holding an older live value or
    /// nothing keeps every tombstone of that key, and a put racing the
    /// removal of an entry is never lost. Runs one at a time with `join` and
    /// `leave` (it queues behind them), while puts and gets keep running.
    ///
    /// Fails, changing nothing, if `older_than` is further ahead of wall-clock
    /// time than [`Config::max_clock_skew`](crate::Config::max_clock_skew).
    ///
    /// Cost: two scans of every server (strays, then tombstones), one lookup
    /// per replica for each key and for each stray, and a grace period. The argument is in the `compaction` module source.
    ///
    /// ```
    /// use ringkv::{Cluster, Config, Error, Timestamp};
    ///
    /// let cluster = Cluster::new(Config::default(), ["a", "b", "c"])?;
    /// cluster.put("k", "v")?;
    /// let deleted = cluster.delete("k")?;
    /// let cutoff = Timestamp(deleted.0 + 1);
    /// assert_eq!(cluster.compact(cutoff)?, 3); // one tombstone per replica
    /// assert!(matches!(
    ///     cluster.put_at("k", "late", deleted),
    ///     Err(Error::TimestampCompacted { .. })
    /// ));
    /// # Ok::<(), ringkv::Error>(())
    /// ```
    pub fn compact(&self, older_than: Timestamp) -> Result<u64, Error> {
        self.shared.check_timestamp(older_than)?;
        let _serial = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        let (placement, watermark) = self.stable();
        let watermark = watermark.raised_to(older_than);
        // The clock first, then the snapshot: a write that loads the new
        // snapshot is stamped above the watermark (the snapshot's publication
        // orders the clock update before that load). An earlier, higher
        // watermark was observed by the compaction that set it.
        self.shared.clock.observe(older_than);
        self.shared.raise_watermark(watermark);
        publish(
            &self.snapshot,
            Snapshot::stable(placement.clone(), watermark),
        );

        let removed = compaction::compact(&placement, older_than);
        self.compacted.fetch_add(removed, Ordering::Relaxed);
        Ok(removed)
    }

    /// Builds the placement of `servers` (any order) under this configuration.
    fn placement(&self, mut servers: Vec<StdArc<Server>>) -> Placement {
        servers.sort_by(|a, b| a.id().cmp(b.id()));
        let ids: Box<[ServerId]> = servers.iter().map(|s| s.server_id().clone()).collect();
        Placement {
            ring: StdArc::new(Ring::new(
                ids,
                self.shared.config.vnodes,
                self.shared.config.replication,
            )),
            servers: servers.into(),
        }
    }

    /// The preference list of `key` on the current ring: the min(R, N)
    /// servers that replicate it, in ring order.
    ///
    /// While a membership change is in flight this is already the new ring's
    /// list. Cost: one MD5, one binary search, and a clone per id.
    pub fn replicas(&self, key: impl AsRef<[u8]>) -> Vec<ServerId> {
        let position = ring_position(key);
        let snapshot = self.snapshot.load();
        let ring = &snapshot.current.ring;
        ring.preference(position)
            .iter()
            .map(|&index| ring.servers()[index as usize].clone())
            .collect()
    }

    /// The servers of the current ring, sorted by id. While a change is in
    /// flight, this is already the new ring.
    pub fn servers(&self) -> Vec<ServerId> {
        self.snapshot.load().current.ring.servers().to_vec()
    }

    /// The server with `id`, including one that is leaving until its
    /// [`leave`](Cluster::leave) returns. The handle stays usable after the
    /// server leaves, but the cluster no longer reads or writes it.
    pub fn server(&self, id: &str) -> Option<StdArc<Server>> {
        let snapshot = self.snapshot.load();
        let departing = snapshot.departing.as_ref().filter(|s| s.id() == id);
        snapshot
            .current
            .server(id)
            .or_else(|| snapshot.previous.as_ref()?.server(id))
            .or(departing)
            .cloned()
    }

    /// The latest timestamp the cluster's clock issued or observed. The next
    /// clock-stamped write gets a greater one.
    pub fn last_timestamp(&self) -> Timestamp {
        self.shared.clock.last()
    }

    /// Counters (read repairs, membership changes, compacted entries) and
    /// the compaction watermark.
    pub fn stats(&self) -> Stats {
        Stats {
            read_repairs: self.read_repairs.load(Ordering::Relaxed),
            membership_changes: self.membership_changes.load(Ordering::Relaxed),
            compacted: self.compacted.load(Ordering::Relaxed),
            watermark: self.snapshot.load().watermark.get().unwrap_or_default(),
        }
    }
}

/// Merges one version into every replica of its key under `snapshot`: the
/// current preference list first, then any old-only replicas (see the
/// protocol in [`crate::migration`]). All replicas share one allocation.
fn write(snapshot: &Snapshot, key: &[u8], value: Option<Bytes>, timestamp: Timestamp) {
    let entry_key = EntryKey::new(ring_position(key), key);
    let version = Arc::new(Versioned { timestamp, value });
    snapshot.for_each_replica(entry_key.position(), |server| {
        server.merge(&entry_key, &version);
    });
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot.load();
        f.debug_struct("Cluster")
            .field("servers", &snapshot.current.ring.servers())
            .field("config", &self.shared.config)
            .field("changing", &snapshot.previous.is_some())
            .finish()
    }
}
