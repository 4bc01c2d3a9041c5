//! Membership changes: which ring ranges move, and the protocol that moves
//! them while puts and gets run.
//!
//! # What moves
//!
//! Cut the ring at every vnode position of the old ring and of the new one.
//! Inside each piece both rings give one preference list; only the pieces
//! whose replica *set* changed are touched ([`plan`]). For such a piece, the
//! servers in the new set but not the old one *gain* it, and those in the old
//! set but not the new one *lose* it. The ranges of every replica of the old
//! set are read side by side, and for each key the newest version any of them
//! holds (so a version held by a single replica survives) is merged, under
//! last-write-wins, into every new replica that lacks it: the gainers, and a
//! staying replica that held something older or nothing. Afterwards the piece
//! is removed from the losers. Nothing outside the changed pieces is read, so
//! the work follows the data that moves, not the data stored.
//!
//! A leave that leaves fewer than R servers has no gainers: every remaining
//! server already replicates the piece. The leaving server's entries are
//! still read and merged into the servers that stay, because a version only
//! it held (after replicas diverged) would otherwise be lost.
//!
//! # The protocol
//!
//! The data path loads the cluster's current [`Snapshot`] once per operation
//! from an [`ArcCell`] and holds it until the operation
//! returns. A stable snapshot has one placement; a *transitional* one has the
//! new placement and the previous one, and an operation on it reads and writes
//! the union of the key's two preference lists: the new replicas first, then
//! the replicas only the old list has. Membership changes take the cluster's
//! membership mutex, so they run one at a time; the data path never takes it.
//!
//! A change from placement `O` to placement `N` runs:
//!
//! 1. **Publish** the transitional snapshot `(N, O)` and **wait** until the
//!    previous snapshot is unreferenced (a grace period, see
//!    [`wait_until_unique`](crate::sync::wait_until_unique)). From here on,
//!    every write reaches both lists; every write made on `O` alone is done.
//! 2. **Copy** each changed piece from the old replicas to the gainers (and
//!    to staying replicas that lack a key's newest version). An entry the
//!    scan misses because it was written during the scan was written by an
//!    operation on the transitional snapshot, which wrote the gainers itself.
//!    A copy is a last-write-wins merge, so one that races a newer write
//!    loses to it.
//! 3. **Publish** the final snapshot `N` and **wait** again, so that no
//!    operation can still write the losers' pieces.
//! 4. **Drop** the changed pieces from the losers that stay in the cluster,
//!    and clear a leaving server. (The final snapshot of a `leave` still names
//!    the leaving server, so `Cluster::server` finds it until `leave`
//!    returns; one more publication, with its own wait, forgets it.)
//!
//! Every publication, without exception, is followed by its wait. The first
//! wait of the *next* change only checks the snapshot it replaces, so it is
//! sound only if no operation still holds an older one; a publication that
//! skipped its wait would let a put on an older snapshot land after the next
//! copy (loom model `put_racing_leave_then_join`).
//!
//! Why it holds:
//!
//! * *No acknowledged write is lost.* A write acknowledged on `O` alone
//!   finished before step 2 (first wait) and is on all its old replicas, so
//!   the copy carries it to the gainers; a write on the transitional snapshot
//!   reached both lists itself; a write on `N` reaches `N`. Drops (step 4)
//!   only remove pieces from servers outside `N`'s list, after every
//!   operation that could write them has finished (second wait).
//! * *Reads are never older than an acknowledged write, and are monotonic.*
//!   Until step 4 the old replicas hold everything; operations on `O` read
//!   them, operations on the transitional snapshot read them and the new ones.
//!   Operations on `N` start after step 2, when the gainers hold everything
//!   acknowledged. A read that saw a write still in flight on the
//!   transitional snapshot saw it on some replica; the write reaches every new
//!   replica before any old-only one, so a later read on `N` finds it too.
//! * *The grace periods end.* Nothing public holds a snapshot beyond one
//!   call, and every operation runs to completion without waiting.
//!
//! The memory orderings: each snapshot swap is arc-swap's (sequentially
//! consistent); the `Acquire` fence in `wait_until_unique` pairs with the
//! `Release` decrement of each reader's `Arc` drop, so every write a reader
//! made happens-before the copy or the drop that follows the wait.
//!
//! # Failure midway
//!
//! A migration calls no user code; only a bug or an allocation failure can
//! make it panic. If one unwinds anyway, [`Transition`]'s destructor leaves
//! the cluster stable: before the final snapshot was published, it publishes
//! the old placement again, waits, and removes the partial copies from the
//! gainers (the old replicas still hold everything); after, it finishes the
//! drop. The `join` or `leave` call then propagates the panic, and the next
//! membership change proceeds normally. A second panic inside that cleanup
//! aborts the process, as any panic during unwinding does.

use std::sync::Arc as StdArc;

use crate::compaction::Watermark;
use crate::ring::Ring;
use crate::snapshot::{publish, Placement, Snapshot};
use crate::store::{Entry, Merge, Server};
use crate::sync::{Arc, ArcCell, ArcGuard};
use crate::version::Versioned;

/// What a membership change moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Migration {
    /// (key, server) pairs written to a server that held nothing for that key
    /// before, tombstones included.
    pub copied: u64,
    /// Entries removed from servers that stay in the cluster.
    pub dropped: u64,
    /// Entries read to do it: each entry of the changed ranges on every old
    /// replica, plus each entry visited by the drop. When replicas agree, at
    /// most (R + 1) times `copied + dropped`, whatever else the cluster holds.
    /// The exception is a leave that leaves fewer than R servers: nothing is
    /// copied or dropped, but the leaving server's entries are read once, to
    /// hand over any version only it holds.
    pub scanned: u64,
}

/// One piece of the ring whose replica set changes: positions in
/// `start..end` (`end == None`: to the end of the ring).
#[derive(Debug)]
pub(crate) struct Move {
    start: u32,
    end: Option<u32>,
    /// Every replica of the old set, by index in the old placement.
    sources: Vec<u32>,
    /// New-set servers not in the old set, by index in the new placement.
    gainers: Vec<u32>,
    /// Old-set servers that stay in the new set, by position in `sources`.
    stayers: Vec<usize>,
    /// Old-set servers not in the new set that stay in the cluster, by index
    /// in the new placement.
    losers: Vec<u32>,
}

/// The pieces of the ring whose replica set differs between `old` and `new`,
/// adjacent pieces with the same movement merged.
///
/// Cost: a sort of both rings' vnode positions and two binary searches per
/// piece; no data is read.
pub(crate) fn plan(old: &Ring, new: &Ring) -> Vec<Move> {
    let mut cuts: Vec<u32> = old
        .positions()
        .iter()
        .chain(new.positions())
        .copied()
        .collect();
    cuts.sort_unstable();
    cuts.dedup();

    // A key at position p belongs to the first vnode strictly after p, so
    // every position in [cut_j, cut_j+1) has the owner that cut_j has.
    let mut pieces: Vec<(u32, Option<u32>)> = Vec::with_capacity(cuts.len() + 1);
    if cuts[0] > 0 {
        pieces.push((0, Some(cuts[0])));
    }
    for (j, &cut) in cuts.iter().enumerate() {
        pieces.push((cut, cuts.get(j + 1).copied()));
    }

    let new_index = |id: &crate::ServerId| new.servers().binary_search(id).ok().map(|i| i as u32);
    let mut moves: Vec<Move> = Vec::new();
    for (start, end) in pieces {
        let before = old.preference(start);
        let after = new.preference(start);
        let before_ids = || before.iter().map(|&i| &old.servers()[i as usize]);
        let after_ids: Vec<_> = after.iter().map(|&i| &new.servers()[i as usize]).collect();

        let gainers: Vec<u32> = after
            .iter()
            .copied()
            .filter(|&i| !before_ids().any(|id| *id == new.servers()[i as usize]))
            .collect();
        let stayers: Vec<usize> = before_ids()
            .enumerate()
            .filter(|(_, id)| after_ids.contains(id))
            .map(|(position, _)| position)
            .collect();
        let losers: Vec<u32> = before_ids()
            .filter(|id| !after_ids.contains(id))
            .filter_map(new_index)
            .collect();
        if gainers.is_empty() && stayers.len() == before.len() {
            continue;
        }

        let sources = before.to_vec();
        if let Some(last) = moves.last_mut() {
            let adjacent = last.end == Some(start);
            if adjacent
                && last.sources == sources
                && last.gainers == gainers
                && last.stayers == stayers
                && last.losers == losers
            {
                last.end = end;
                continue;
            }
        }
        moves.push(Move {
            start,
            end,
            sources,
            gainers,
            stayers,
            losers,
        });
    }
    moves
}

/// Where a [`Transition`] is; its destructor finishes or undoes from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The transitional snapshot is published; the final one is not.
    Copying,
    /// The final snapshot is published and the second wait is done.
    Dropping,
    /// Nothing left to do.
    Done,
}

/// One membership change in flight, from `old` to `new`.
///
/// Built by [`Transition::begin`] (step 1), finished by
/// [`Transition::finish`] (steps 2 to 4). Dropping it unfinished (a panic)
/// rolls it back or forward; see the module docs.
pub(crate) struct Transition<'c> {
    cell: &'c ArcCell<Snapshot>,
    old: Placement,
    new: Placement,
    leaving: Option<StdArc<Server>>,
    moves: Vec<Move>,
    phase: Phase,
    report: Migration,
    /// The compaction watermark, carried into every snapshot published.
    watermark: Watermark,
}

impl<'c> Transition<'c> {
    /// Publishes the transitional snapshot and waits out the grace period.
    ///
    /// The caller holds the membership mutex, so `old` is what `cell` holds.
    pub(crate) fn begin(
        cell: &'c ArcCell<Snapshot>,
        old: Placement,
        new: Placement,
        leaving: Option<StdArc<Server>>,
        watermark: Watermark,
    ) -> Transition<'c> {
        let moves = plan(&old.ring, &new.ring);
        let transitional = Snapshot {
            current: new.clone(),
            previous: Some(old.clone()),
            watermark,
            departing: None,
        };
        publish(cell, transitional);
        Transition {
            cell,
            old,
            new,
            leaving,
            moves,
            phase: Phase::Copying,
            report: Migration::default(),
            watermark,
        }
    }

    /// Copies, publishes the final snapshot, waits, drops. Returns what moved.
    pub(crate) fn finish(mut self) -> Migration {
        self.copy();

        let last = Snapshot {
            departing: self.leaving.clone(),
            ..Snapshot::stable(self.new.clone(), self.watermark)
        };
        publish(self.cell, last);
        self.phase = Phase::Dropping;

        self.drop_moved();
        self.forget_departing();
        self.phase = Phase::Done;
        self.report
    }

    /// Stops `Cluster::server` from finding the leaving server.
    ///
    /// The data path treats this snapshot exactly like the one it replaces,
    /// but the wait is still needed: every publication must end with no
    /// operation holding an older snapshot, or the next change's first grace
    /// period would wait for the wrong one and miss writes still in flight.
    fn forget_departing(&self) {
        if self.leaving.is_some() {
            publish(
                self.cell,
                Snapshot::stable(self.new.clone(), self.watermark),
            );
        }
    }

    /// Step 2: for each key of each changed piece, find the newest version
    /// held by any old replica and merge it into every new replica that lacks
    /// it: the gainers, and any replica that stays but holds an older version
    /// or nothing.
    ///
    /// Where the piece has gainers, the old replicas' ranges are read side by
    /// side in one ordered pass (a merge join on the entry key), so each entry
    /// is read once and each key costs one write per new replica that lacks
    /// it, however many old replicas hold it. Merging from every old replica,
    /// not from one, is what keeps a version that only one replica holds.
    ///
    /// Where nobody gains the piece (a leave that takes the cluster below R
    /// servers), only the replicas that drop out are read, and each of their
    /// entries is merged into the replicas that stay: in the common case they
    /// already hold it and nothing is written, but a version only the leaving
    /// server held survives.
    fn copy(&mut self) {
        let mut key: Vec<u8> = Vec::new();
        for piece in &self.moves {
            if piece.gainers.is_empty() {
                hand_to_stayers(&self.old, piece, &mut self.report);
                continue;
            }
            let sources: Vec<&Server> = piece
                .sources
                .iter()
                .map(|&source| &*self.old.servers[source as usize])
                .collect();
            let mut cursors: Vec<_> = sources
                .iter()
                .map(|source| source.range(piece.start, piece.end))
                .collect();
            let mut heads: Vec<Option<Entry<'_>>> =
                cursors.iter_mut().map(Iterator::next).collect();
            let mut held: Vec<Option<ArcGuard<Versioned>>> = Vec::new();
            held.resize_with(sources.len(), || None);

            // The next key of the piece is the smallest key at a cursor.
            while let Some(next) = heads.iter().flatten().map(Entry::key).min() {
                key.clear();
                key.extend_from_slice(next);

                let mut newest: Option<usize> = None;
                for (i, head) in heads.iter_mut().enumerate() {
                    held[i] = None;
                    let Some(entry) = head.take_if(|entry| entry.key() == key.as_slice()) else {
                        continue;
                    };
                    self.report.scanned += 1;
                    // `None` only for an entry being compacted, and
                    // compaction never overlaps a migration.
                    held[i] = sources[i].live(&entry);
                    *head = cursors[i].next();
                    if let Some(version) = &held[i] {
                        let newer = match newest.and_then(|best| held[best].as_ref()) {
                            Some(best) => version.supersedes(best),
                            None => true,
                        };
                        if newer {
                            newest = Some(i);
                        }
                    }
                }
                let Some(newest) = newest.and_then(|best| held[best].as_ref()) else {
                    continue;
                };

                for &gainer in &piece.gainers {
                    let gainer = &self.new.servers[gainer as usize];
                    if gainer.merge(&key, newest) == Merge::Inserted {
                        self.report.copied += 1;
                    }
                }
                for &stayer in &piece.stayers {
                    let current = held[stayer].as_ref();
                    let lacks = current.is_none_or(|current| {
                        !Arc::ptr_eq(current, newest) && newest.supersedes(current)
                    });
                    if lacks && sources[stayer].merge(&key, newest) == Merge::Inserted {
                        self.report.copied += 1;
                    }
                }
            }
        }
    }

    /// Step 4: remove each changed piece from the losers that stay, and
    /// everything from a leaving server.
    fn drop_moved(&mut self) {
        for piece in &self.moves {
            for &loser in &piece.losers {
                let loser = &self.new.servers[loser as usize];
                for entry in loser.range(piece.start, piece.end) {
                    self.report.scanned += 1;
                    if loser.discard(&entry) {
                        self.report.dropped += 1;
                    }
                }
            }
        }
        if let Some(leaving) = &self.leaving {
            leaving.clear();
        }
    }

    /// Undoes a change whose final snapshot was never published: the old
    /// placement goes back, and once no operation can still write the
    /// gainers, the partial copies come off them.
    fn roll_back(&mut self) {
        publish(
            self.cell,
            Snapshot::stable(self.old.clone(), self.watermark),
        );
        for piece in &self.moves {
            for &gainer in &piece.gainers {
                let gainer = &self.new.servers[gainer as usize];
                if self.old.server(gainer.id()).is_none() {
                    continue; // A joining server that never joined: discarded whole.
                }
                for entry in gainer.range(piece.start, piece.end) {
                    gainer.discard(&entry);
                }
            }
        }
    }
}

impl Drop for Transition<'_> {
    fn drop(&mut self) {
        match self.phase {
            Phase::Copying => self.roll_back(),
            Phase::Dropping => {
                self.drop_moved();
                self.forget_departing();
            }
            Phase::Done => {}
        }
    }
}

/// Step 2 for a piece nobody gains: merge the entries of the old
/// replicas that drop out into the replicas that stay.
fn hand_to_stayers(old: &Placement, piece: &Move, report: &mut Migration) {
    for (position, &source) in piece.sources.iter().enumerate() {
        if piece.stayers.contains(&position) {
            continue;
        }
        let source = &old.servers[source as usize];
        for entry in source.range(piece.start, piece.end) {
            report.scanned += 1;
            let Some(version) = source.live(&entry) else {
                continue; // Being compacted; compaction never overlaps a migration.
            };
            for &stayer in &piece.stayers {
                let stayer = &old.servers[piece.sources[stayer] as usize];
                if stayer.merge(entry.key(), &version) == Merge::Inserted {
                    report.copied += 1;
                }
            }
        }
    }
}
