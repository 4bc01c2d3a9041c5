//! Placement: ring positions, virtual nodes and preference lists.
//!
//! # The placement rule
//!
//! * The ring position of a byte string is its MD5 digest read as a 128-bit
//!   big-endian integer, modulo 2^32: the digest's last four bytes, big-endian
//!   ([`ring_position`]). In Python: `int(hashlib.md5(s).hexdigest(), 16) % 2**32`.
//! * A server `id` owns K virtual nodes (vnodes) named `"{id}-{i}"`, `i` in
//!   `0..K`, each at the ring position of its name. Vnodes are ordered by
//!   (position, server id, `i`), so equal positions still give one ring.
//! * A key's preference list starts at the first vnode whose position is
//!   strictly greater than the key's position (wrapping past 2^32 to the
//!   first vnode), walks clockwise and collects distinct servers until
//!   min(R, N) are found.
//!
//! A [`Ring`] is immutable. It precomputes the preference list that starts at
//! every vnode, so a lookup is one MD5 (done by the caller) plus one binary
//! search over the vnode positions. A membership change builds a new ring.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

use md5::{Digest, Md5};

/// The ring position of `key`: the last four bytes of its MD5 digest, read
/// big-endian (the digest as a 128-bit big-endian integer, modulo 2^32).
///
/// Cost: one MD5 of `key`, about 0.15 µs for a short key.
///
/// # Examples
///
/// ```
/// // Python: int(hashlib.md5(b"").hexdigest(), 16) % 2**32
/// assert_eq!(ringkv::ring_position(""), 0xecf8_427e);
/// assert_eq!(ringkv::ring_position(b"hello"), ringkv::ring_position("hello"));
/// ```
pub fn ring_position(key: impl AsRef<[u8]>) -> u32 {
    let digest = Md5::digest(key.as_ref());
    let tail: [u8; 4] = digest[12..16]
        .try_into()
        .expect("an MD5 digest is 16 bytes");
    u32::from_be_bytes(tail)
}

/// The name of a server: a cheap-to-clone, immutable string.
///
/// It compares, orders and hashes like the `str` it holds, so maps keyed by
/// `ServerId` can be queried with a `&str`. An id of up to 22 bytes is
/// stored inline and cloned by copying it, with no shared count to touch;
/// a longer one is shared behind an `Arc`.
#[derive(Clone)]
pub struct ServerId(IdRepr);

/// Ids up to this long are stored inline.
const INLINE_ID: usize = 22;

#[derive(Clone)]
enum IdRepr {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Shared(Arc<str>),
}

impl ServerId {
    /// The id as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            IdRepr::Inline { len, bytes } => std::str::from_utf8(&bytes[..*len as usize])
                .expect("inline ids are copied whole from a str"),
            IdRepr::Shared(id) => id,
        }
    }

    fn new(id: &str) -> ServerId {
        if id.len() <= INLINE_ID {
            let mut bytes = [0u8; INLINE_ID];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            ServerId(IdRepr::Inline {
                len: id.len() as u8,
                bytes,
            })
        } else {
            ServerId(IdRepr::Shared(Arc::from(id)))
        }
    }
}

impl PartialEq for ServerId {
    fn eq(&self, other: &ServerId) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ServerId {}

impl PartialOrd for ServerId {
    fn partial_cmp(&self, other: &ServerId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServerId {
    fn cmp(&self, other: &ServerId) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for ServerId {
    // Hashes as the `str` it borrows as, so lookups by `&str` find it.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Deref for ServerId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ServerId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ServerId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for ServerId {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<ServerId> for str {
    fn eq(&self, other: &ServerId) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ServerId> for &str {
    fn eq(&self, other: &ServerId) -> bool {
        *self == other.as_str()
    }
}

impl From<&str> for ServerId {
    fn from(id: &str) -> Self {
        ServerId::new(id)
    }
}

impl From<String> for ServerId {
    fn from(id: String) -> Self {
        ServerId::new(&id)
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An immutable placement of servers on the ring.
///
/// Servers are identified inside a ring by their index in [`Ring::servers`]
/// (sorted by id); preference lists are slices of those indices.
pub(crate) struct Ring {
    /// Server ids, sorted.
    servers: Box<[ServerId]>,
    /// Vnode positions in ring order.
    positions: Box<[u32]>,
    /// `replication` server indices per vnode: the preference list of the
    /// keys that vnode owns, in walk order.
    preference: Box<[u32]>,
    /// min(R, N).
    replication: usize,
}

impl Ring {
    /// Builds the ring of `servers` (sorted, distinct, non-empty) with
    /// `vnodes` virtual nodes each, replicating `replication` times (clamped
    /// to the number of servers).
    ///
    /// Cost: K·N MD5s, a sort, and a walk per vnode.
    pub(crate) fn new(servers: Box<[ServerId]>, vnodes: usize, replication: usize) -> Ring {
        debug_assert!(!servers.is_empty() && vnodes > 0 && replication > 0);
        debug_assert!(servers.windows(2).all(|w| w[0] < w[1]));

        // Sorting by (position, server index, i) is sorting by
        // (position, server id, i), because the ids are sorted.
        let mut vnode_list: Vec<(u32, u32, usize)> = Vec::with_capacity(servers.len() * vnodes);
        for (index, id) in servers.iter().enumerate() {
            for i in 0..vnodes {
                let position = ring_position(format!("{id}-{i}"));
                vnode_list.push((position, index as u32, i));
            }
        }
        vnode_list.sort_unstable();

        let replication = replication.min(servers.len());
        let count = vnode_list.len();
        let mut preference = Vec::with_capacity(count * replication);
        let mut seen = vec![false; servers.len()];
        for start in 0..count {
            let first = preference.len();
            for step in 0..count {
                let owner = vnode_list[(start + step) % count].1;
                if !seen[owner as usize] {
                    seen[owner as usize] = true;
                    preference.push(owner);
                    if preference.len() - first == replication {
                        break;
                    }
                }
            }
            for &owner in &preference[first..] {
                seen[owner as usize] = false;
            }
        }

        Ring {
            servers,
            positions: vnode_list.iter().map(|v| v.0).collect(),
            preference: preference.into_boxed_slice(),
            replication,
        }
    }

    /// Server ids, sorted; a server's index here is what preference lists hold.
    pub(crate) fn servers(&self) -> &[ServerId] {
        &self.servers
    }

    /// The index of the vnode that owns `position`: the first vnode strictly
    /// after it, wrapping to the first vnode. One binary search.
    #[inline]
    fn owner(&self, position: u32) -> usize {
        let next = self.positions.partition_point(|&p| p <= position);
        if next == self.positions.len() {
            0
        } else {
            next
        }
    }

    /// The preference list of a key at `position`, as server indices in walk
    /// order. One binary search, no allocation.
    #[inline]
    pub(crate) fn preference(&self, position: u32) -> &[u32] {
        let vnode = self.owner(position);
        &self.preference[vnode * self.replication..(vnode + 1) * self.replication]
    }

    /// The vnode positions in ring order (with repeats where vnodes collide).
    pub(crate) fn positions(&self) -> &[u32] {
        &self.positions
    }
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("servers", &self.servers)
            .field("vnodes", &self.positions.len())
            .field("replication", &self.replication)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Box<[ServerId]> {
        let mut ids: Vec<ServerId> = names.iter().map(|&n| ServerId::from(n)).collect();
        ids.sort();
        ids.into_boxed_slice()
    }

    /// The walk the spec describes, done the slow way, per call.
    fn naive(servers: &[ServerId], vnodes: usize, r: usize, key: &[u8]) -> Vec<ServerId> {
        let mut ring: Vec<(u32, ServerId, usize)> = servers
            .iter()
            .flat_map(|id| {
                (0..vnodes).map(move |i| (ring_position(format!("{id}-{i}")), id.clone(), i))
            })
            .collect();
        ring.sort();
        let position = ring_position(key);
        let start = ring.iter().position(|v| v.0 > position).unwrap_or(0);
        let mut out: Vec<ServerId> = Vec::new();
        for step in 0..ring.len() {
            let id = &ring[(start + step) % ring.len()].1;
            if !out.contains(id) {
                out.push(id.clone());
            }
            if out.len() == r.min(servers.len()) {
                break;
            }
        }
        out
    }

    #[test]
    fn position_is_the_digest_tail_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(ring_position(""), 0xecf8_427e);
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(ring_position("a"), 0x6977_2661);
    }

    #[test]
    fn precomputed_lists_match_the_naive_walk() {
        for (names, vnodes, r) in [
            (&["a"][..], 1, 3),
            (&["a", "b"][..], 3, 2),
            (&["s1", "s2", "s3", "s4", "s5"][..], 4, 3),
            (&["x", "yy", "zzz"][..], 10, 5),
        ] {
            let servers = ids(names);
            let ring = Ring::new(servers.clone(), vnodes, r);
            for k in 0..300u32 {
                let key = k.to_be_bytes();
                let got: Vec<ServerId> = ring
                    .preference(ring_position(key))
                    .iter()
                    .map(|&i| ring.servers()[i as usize].clone())
                    .collect();
                assert_eq!(got, naive(&servers, vnodes, r, &key), "key {k}");
            }
        }
    }

    #[test]
    fn a_key_on_a_vnode_belongs_to_the_next_vnode() {
        let servers = ids(&["a", "b", "c"]);
        let ring = Ring::new(servers.clone(), 2, 1);
        for id in servers.iter() {
            for i in 0..2 {
                let name = format!("{id}-{i}");
                let got = &ring.servers()[ring.preference(ring_position(&name))[0] as usize];
                assert_eq!(*got, naive(&servers, 2, 1, name.as_bytes())[0]);
            }
        }
    }
}
