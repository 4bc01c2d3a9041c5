//! Memory: the bytes ringkv allocates per stored replica entry beyond the
//! key and the value, counted by a global allocator that wraps the system's.
//!
//! A cluster of 10 servers (K 10) is built, then 100k keys (16 bytes) with
//! 100-byte values are put, with R 1 and R 3; the bytes live after the puts
//! minus the bytes live before are the cost of storing them. A replica
//! entry's *overhead* is that cost minus one copy of each value (ringkv
//! stores a value once, shared by its replicas) and one copy of the key per
//! replica (each replica indexes the key), divided by the replica entries.
//! Two columns: bytes requested from the allocator, and bytes the system
//! allocator actually used (`malloc_usable_size` plus glibc's 8-byte chunk
//! header), which includes its rounding.
//!
//! A last row puts one 1 MiB value with R 3 to show it is stored once. The
//! textbook baselines of the `ops` benchmark are measured the same way, for
//! comparison.
//!
//! Run: `cargo bench --bench memory` (a few seconds; no criterion here).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use ringkv::{Bytes, Config, ServerId};

use common::dashmap_store::Sharded;
use common::locked::Locked;
use common::{cluster_of, count_label, key, server_ids, size_label, Kv, Scale};

const SERVERS: usize = 10;
const VNODES: usize = 10;
const KEY_LEN: usize = 16;
const TARGET: f64 = 150.0;

/// Bytes requested and not yet freed.
static REQUESTED: AtomicIsize = AtomicIsize::new(0);
/// Bytes the system allocator holds for them, chunk headers included.
static FOOTPRINT: AtomicIsize = AtomicIsize::new(0);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn footprint_of(ptr: *mut u8) -> isize {
    extern "C" {
        fn malloc_usable_size(ptr: *mut std::ffi::c_void) -> usize;
    }
    // glibc keeps one size word before each chunk it hands out.
    const HEADER: usize = 8;
    // SAFETY: `ptr` was returned by the system allocator (glibc's malloc
    // family, which `System` uses on this target) and is not yet freed.
    (unsafe { malloc_usable_size(ptr.cast()) } + HEADER) as isize
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn footprint_of(_ptr: *mut u8) -> isize {
    0
}

/// Counts every allocation of the process on its way to `System`.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are only read, never used to allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract; forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            FOOTPRINT.fetch_add(footprint_of(ptr), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            FOOTPRINT.fetch_add(footprint_of(ptr), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        FOOTPRINT.fetch_sub(footprint_of(ptr), Ordering::Relaxed);
        // SAFETY: the caller upholds `dealloc`'s contract; forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = footprint_of(ptr);
        // SAFETY: the caller upholds `realloc`'s contract; forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            REQUESTED.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            FOOTPRINT.fetch_add(footprint_of(new) - old, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes live now: (requested, footprint).
fn live() -> (isize, isize) {
    (
        REQUESTED.load(Ordering::Relaxed),
        FOOTPRINT.load(Ordering::Relaxed),
    )
}

/// One measurement: what storing `keys` keys of `value_len` bytes cost.
struct Sample {
    store: &'static str,
    replication: usize,
    keys: u64,
    value_len: usize,
    requested: isize,
    footprint: isize,
}

impl Sample {
    fn entries(&self) -> f64 {
        (self.keys * self.replication as u64) as f64
    }

    /// Bytes per replica entry beyond one copy of each value and one copy
    /// of the key per replica.
    fn overhead(&self, total: isize) -> f64 {
        let payload = self.keys as f64 * self.value_len as f64 + self.entries() * KEY_LEN as f64;
        (total as f64 - payload) / self.entries()
    }
}

/// Builds a store with `build` (not counted), then counts what putting the
/// keys costs. The value buffers are allocated inside the counted window,
/// one per key, as a user's would be.
fn measure<S: Kv>(
    store: &'static str,
    replication: usize,
    keys: u64,
    value_len: usize,
    build: impl FnOnce() -> S,
) -> Sample {
    let built = build();
    let before = live();
    for i in 0..keys {
        built.put(&key(i), Bytes::from(vec![i as u8; value_len]));
    }
    let after = live();
    drop(built);
    Sample {
        store,
        replication,
        keys,
        value_len,
        requested: after.0 - before.0,
        footprint: after.1 - before.1,
    }
}

fn main() {
    let scale = Scale::from_env();
    let keys = scale.keys(100_000);
    let ids: Vec<ServerId> = server_ids(SERVERS);
    let config = |replication| Config {
        vnodes: VNODES,
        replication,
        ..Config::default()
    };

    let mut samples = Vec::new();
    for replication in [1, 3] {
        samples.push(measure("ringkv", replication, keys, 100, || {
            cluster_of(config(replication), &ids)
        }));
        samples.push(measure("locked", replication, keys, 100, || {
            Locked::new(&ids, VNODES, replication)
        }));
        samples.push(measure("dashmap", replication, keys, 100, || {
            Sharded::new(&ids, VNODES, replication)
        }));
    }
    samples.push(measure("ringkv", 3, 1, 1 << 20, || {
        cluster_of(config(3), &ids)
    }));

    println!("\n## memory — bytes per replica entry beyond key and value\n");
    println!(
        "| store | R | keys | value | bytes stored (requested) | overhead per replica entry \
         (requested) | overhead (malloc footprint) | target ≤ {TARGET:.0} |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for sample in &samples {
        let overhead = sample.overhead(sample.requested);
        let met = match (sample.store, overhead <= TARGET) {
            ("ringkv", true) => "yes",
            ("ringkv", false) => "**no**",
            _ => "(baseline)",
        };
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {} |",
            sample.store,
            sample.replication,
            count_label(sample.keys),
            size_label(sample.value_len),
            sample.requested,
            overhead,
            sample.overhead(sample.footprint),
            met
        );
    }
    let big = samples.last().expect("the 1 MiB sample");
    println!(
        "\nOne {} value with R {}: {} bytes allocated in all ({:.3} times the value), \
         so it is stored once, not once per replica.",
        size_label(big.value_len),
        big.replication,
        big.requested,
        big.requested as f64 / big.value_len as f64
    );
}
