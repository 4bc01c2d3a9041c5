"""Regenerates loom-tests/mutants/*.patch from the current src/.

Each mutant is one string replacement in one file of src/: the protective
step it removes is its first line. Run after changing a protected region:
`python3 loom-tests/mutants/generate.py`. It fails if a region moved.
"""
import pathlib
import subprocess
import tempfile
root = pathlib.Path(__file__).resolve().parents[2]
mutants = [
 ("01-no-first-grace-period",
  "Publish the transitional snapshot without waiting for operations that still hold the previous one.",
  "src/migration.rs",
  """        publish(cell, transitional);
        Transition {""",
  """        drop(cell.swap(crate::sync::Arc::new(transitional)));
        Transition {"""),
 ("02-no-transitional-ring",
  "Publish the final ring directly instead of the transitional union of old and new replica sets.",
  "src/migration.rs",
  """        let transitional = Snapshot {
            current: new.clone(),
            previous: Some(old.clone()),
            watermark,
            departing: None,
        };""",
  """        let transitional = Snapshot::stable(new.clone(), watermark);"""),
 ("03-old-only-replicas-first",
  "Write (and read) the replicas only the old ring has before the new ring's replicas.",
  "src/snapshot.rs",
  """        for server in self.current.replicas(position) {
            visit(server);
        }
        if let Some(previous) = &self.previous {
            for server in previous.replicas(position) {
                let also_current = self
                    .current
                    .replicas(position)
                    .any(|current| StdArc::ptr_eq(current, server));
                if !also_current {
                    visit(server);
                }
            }
        }""",
  """        if let Some(previous) = &self.previous {
            for server in previous.replicas(position) {
                let also_current = self
                    .current
                    .replicas(position)
                    .any(|current| StdArc::ptr_eq(current, server));
                if !also_current {
                    visit(server);
                }
            }
        }
        for server in self.current.replicas(position) {
            visit(server);
        }"""),
 ("04-no-second-grace-period",
  "Publish the final snapshot and drop moved ranges without waiting for operations on the transitional one.",
  "src/migration.rs",
  """        publish(self.cell, last);
        self.phase = Phase::Dropping;""",
  """        drop(self.cell.swap(crate::sync::Arc::new(last)));
        self.phase = Phase::Dropping;"""),
 ("05-drop-before-switch",
  "Drop the moved ranges from the losers before the final snapshot is published.",
  "src/migration.rs",
  """        publish(self.cell, last);
        self.phase = Phase::Dropping;

        self.drop_moved();""",
  """        self.drop_moved();
        publish(self.cell, last);
        self.phase = Phase::Dropping;
"""),
 ("06-copy-from-one-replica",
  "Copy each key's version from the first old replica that holds it, instead of the newest among all of them.",
  "src/migration.rs",
  """                        let newer = match newest.and_then(|best| held[best].as_ref()) {
                            Some(best) => version.supersedes(best),
                            None => true,
                        };""",
  """                        let newer = match newest.and_then(|best| held[best].as_ref()) {
                            Some(_) => false,
                            None => true,
                        };"""),
 ("07-merge-without-compare",
  "Replace a slot's version with a plain swap after the supersedes check, instead of compare-and-swap.",
  "src/store.rs",
  """            if self.version.compare_and_swap(&current, Arc::clone(version)) {
                return SlotMerge::Won;
            }""",
  """            self.version.swap(Arc::clone(version));
            return SlotMerge::Won;"""),
 ("08-trust-try-insert",
  "Assume the hash-index insert linked our fresh slot, although another writer's may have been first.",
  "src/store.rs",
  """            if self.index.try_insert(SlotRef::clone(&fresh)) {
                self.link(fresh);
                return Merge::Inserted;
            }""",
  """            {
                self.index.try_insert(SlotRef::clone(&fresh));
                self.link(fresh);
                return Merge::Inserted;
            }"""),
 ("09-overwrite-by-reinsert",
  "Overwrite a key by unlinking its slot and linking a new one (the skiplist's replace gap).",
  "src/store.rs",
  """                    SlotMerge::Won => Some(Merge::Replaced),""",
  """                    SlotMerge::Won => {
                        self.index.remove_if(slot.key(), |held| held.ptr_eq(slot));
                        if let Some(entry) = self.ordered.get(&RingSlot::new(SlotRef::clone(slot))) {
                            entry.remove();
                        }
                        let fresh = SlotRef::new(entry_key, Arc::clone(version));
                        self.index.try_insert(SlotRef::clone(&fresh));
                        self.link(fresh);
                        Some(Merge::Replaced)
                    }"""),
 ("13-unwaited-last-publication",
  "Publish the snapshot that forgets a departed server without waiting for operations on the one before.",
  "src/migration.rs",
  """        if self.leaving.is_some() {
            publish(
                self.cell,
                Snapshot::stable(self.new.clone(), self.watermark),
            );
        }""",
  """        if self.leaving.is_some() {
            drop(self.cell.swap(crate::sync::Arc::new(Snapshot::stable(
                self.new.clone(),
                self.watermark,
            ))));
        }"""),
]

mutants += [
 ("10-compaction-removes-without-claim",
  "Compaction unlinks a tombstone's slot without first claiming it, so a racing put can be merged into it.",
  "src/store.rs",
  """                let retired = Arc::clone(&self.shared.retired);
                if !slot.version.compare_and_swap(expected, retired) {
                    return false;
                }
                self.unlink(slot);
                true""",
  """                if !Arc::ptr_eq(&slot.version.load(), expected) {
                    return false;
                }
                self.index.remove_if(slot.key(), |held| held.ptr_eq(slot));
                if let Some(entry) = self.ordered.get(&RingSlot::new(SlotRef::clone(slot))) {
                    entry.remove();
                }
                true"""),
 ("11-watermark-without-grace-period",
  "Publish the compaction watermark without waiting for writes that checked the previous one.",
  "src/cluster.rs",
  """        publish(
            &self.snapshot,
            Snapshot::stable(placement.clone(), watermark),
        );""",
  """        drop(self.snapshot.swap(Arc::new(Snapshot::stable(placement.clone(), watermark))));"""),
 ("12-repair-after-releasing-snapshot",
  "Read repair writes after the get has released its ring snapshot.",
  "src/cluster.rs",
  """            if self.shared.config.read_repair && !compactable {
                self.repair(&snapshot, &entry_key, version);
            }""",
  """            if self.shared.config.read_repair && !compactable {
                let mut targets = Vec::new();
                snapshot.for_each_replica(entry_key.position(), |server| {
                    targets.push(StdArc::clone(server));
                });
                drop(snapshot);
                for server in targets {
                    server.merge(&entry_key, version);
                }
                return Ok(newest.map(|version| Versioned::clone(&version)));
            }"""),
]

mutants += [
 ("14-leave-below-r-hands-nothing-over",
  "A leave whose ranges nobody gains (fewer servers than R remain) copies nothing to the replicas that stay.",
  "src/migration.rs",
  """            if piece.gainers.is_empty() {
                hand_to_stayers(&self.old, piece, &mut self.report);
                continue;
            }""",
  """            if piece.gainers.is_empty() {
                continue;
            }"""),
 ("15-compaction-ignores-strays",
  "Compaction removes tombstones without first removing the stray entries they supersede.",
  "src/compaction.rs",
  """            if !on_list {
                removed += compact_stray(placement, server, &entry);
            }""",
  """            if !on_list && false {
                removed += compact_stray(placement, server, &entry);
            }"""),
]

scratch = pathlib.Path(tempfile.mkdtemp())
out = root / 'loom-tests/mutants'
for p in out.glob('*.patch'): p.unlink()
for name, why, path, old, new in mutants:
    src = (root / path).read_text()
    assert src.count(old) == 1, (name, src.count(old))
    mutated = src.replace(old, new)
    a = scratch / 'a' / path; b = scratch / 'b' / path
    a.parent.mkdir(parents=True, exist_ok=True); b.parent.mkdir(parents=True, exist_ok=True)
    a.write_text(src); b.write_text(mutated)
    diff = subprocess.run(['diff', '-u', '--label', 'a/' + path, '--label', 'b/' + path, str(a), str(b)],
                          capture_output=True, text=True).stdout
    (out / f'{name}.patch').write_text(f'Mutant: {why}\n\n' + diff)
    print(name)
