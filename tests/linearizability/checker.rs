//! A linearizability checker: the Wing–Gong search with Lowe's memoization
//! (WGL), generic over a sequential specification.
//!
//! # The question
//!
//! A history is a set of completed operations, each with the instant it was
//! called, the instant it returned, what it was asked and what it answered.
//! It is linearizable if some total order of the operations both
//!
//! * respects real time: when `a` returned before `b` was called
//!   (`a.ret < b.call`), `a` comes first; operations whose intervals overlap,
//!   including ones that merely touch (`a.ret == b.call`), may go either way;
//! * is legal: replaying the operations in that order on the sequential
//!   specification, starting from its initial state, gives every operation
//!   the answer it actually got.
//!
//! # The search
//!
//! The calls and returns are put in one list, sorted by instant (a call
//! before a return at the same instant). An operation may come next in the
//! order exactly when its call precedes, in the list, the first remaining
//! return: nothing still pending returned before it was called. The search
//! walks the list from the front, trying each such operation: if the
//! specification accepts its answer, the operation's call and return are
//! unlinked from the list (they stay reachable, so they can be linked back)
//! and the walk restarts from the front. Reaching a return means every
//! candidate before it failed, so the last choice is undone and the walk
//! resumes after it. The history is linearizable when the list empties, and
//! is not when a return is reached with nothing left to undo.
//!
//! Two paths that linearized the same set of operations and reached the same
//! state have the same future, so each (set, state) pair is explored once: a
//! choice leading to a pair already seen is skipped. This cache is what makes
//! the search practical; without it the search is exponential in the number
//! of overlapping operations even when the history is linearizable.
//!
//! A history must be checked per object: for a key-value store, one register
//! per key. Linearizability is compositional, so a store whose per-key
//! histories are linearizable is linearizable, and the split keeps each
//! search small.
//!
//! Every operation must have completed. An operation still pending when the
//! history was cut (no return) is not supported: record only completed ones,
//! and stop the clients before cutting.

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::hash::Hash;

/// A sequential specification: the states of an object and how each
/// operation moves it from one to the next.
pub(crate) trait Spec {
    /// The object's state. Hashed and compared by the search's cache, so it
    /// should be small.
    type State: Clone + Eq + Hash + Debug;
    /// What an operation is asked to do.
    type Input: Debug;
    /// What an operation answers.
    type Output: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` runs on `state`, if a sequential object in
    /// `state` would answer `output`; `None` if it would answer something
    /// else.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// One completed operation of a history.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Operation<I, O> {
    /// Which client ran it; only for reports.
    pub(crate) client: usize,
    /// The instant it was called.
    pub(crate) call: u64,
    /// The instant it returned; at least `call`.
    pub(crate) ret: u64,
    pub(crate) input: I,
    pub(crate) output: O,
}

impl<I: Debug, O: Debug> Debug for Operation<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>6}, {:>6}] client {}: {:?} -> {:?}",
            self.call, self.ret, self.client, self.input, self.output
        )
    }
}

/// The operations of one history, in any order.
pub(crate) type History<S> = [Operation<<S as Spec>::Input, <S as Spec>::Output>];

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The history is linearizable; this is one legal order, as indices into
    /// the history.
    Linearizable(Vec<usize>),
    /// The history is not linearizable.
    NotLinearizable {
        /// The longest order the search built that respects real time and
        /// the specification, as indices into the history.
        longest: Vec<usize>,
        /// After `longest`, the pending operation that returned first: it
        /// had to come next or before anything that returned after it, and
        /// neither it nor any operation overlapping it fit.
        stuck: usize,
    },
}

impl Verdict {
    pub(crate) fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable(_))
    }
}

/// Decides whether `history` is linearizable with respect to `spec`.
///
/// Panics if an operation returns before it is called.
///
/// Cost: linear in the history's length times the number of (set, state)
/// pairs reachable, which stays small when few operations overlap; each
/// cached pair holds a copy of the part of the set that is not a full
/// prefix.
pub(crate) fn check<S: Spec>(spec: &S, history: &History<S>) -> Verdict {
    for (index, op) in history.iter().enumerate() {
        assert!(
            op.call <= op.ret,
            "operation {index} returns before it is called: {op:?}"
        );
    }
    let mut events = Events::new(history);
    let mut linearized = Linearized::new(history.len());
    let mut seen: HashSet<(usize, Box<[u64]>, S::State)> = HashSet::new();
    let mut state = spec.init();

    // The operations linearized so far, in order, each with the state it
    // found, so that a choice can be undone.
    let mut chosen: Vec<(usize, S::State)> = Vec::new();
    let mut longest = Longest::default();

    let mut event = events.first();
    while !events.is_empty() {
        let op = events.op(event);
        if events.is_call(event) {
            let target = &history[op];
            if let Some(next) = spec.step(&state, &target.input, &target.output) {
                linearized.insert(op);
                if seen.insert((linearized.prefix_words(), linearized.rest(), next.clone())) {
                    chosen.push((op, std::mem::replace(&mut state, next)));
                    events.lift(op);
                    event = events.first();
                    continue;
                }
                linearized.remove(op);
            }
            event = events.next(event);
        } else {
            // `op` is the first pending operation to return: every candidate
            // before its return failed, so the last choice was wrong.
            longest.record(&chosen, op);
            let Some((undone, before)) = chosen.pop() else {
                return longest.into_verdict();
            };
            longest.popped(chosen.len());
            state = before;
            linearized.remove(undone);
            events.unlift(undone);
            event = events.next(events.call_of(undone));
        }
    }
    Verdict::Linearizable(chosen.into_iter().map(|(op, _)| op).collect())
}

/// Checks that `order` is a legal linearization of `history`: a permutation
/// of it that respects real time and that `spec` accepts. Independent of the
/// search, so a test can verify what [`check`] returns.
pub(crate) fn validate<S: Spec>(
    spec: &S,
    history: &History<S>,
    order: &[usize],
) -> Result<(), String> {
    let mut placed = vec![false; history.len()];
    for &op in order {
        if op >= history.len() || std::mem::replace(&mut placed[op], true) {
            return Err(format!("{order:?} is not a permutation of the history"));
        }
    }
    if order.len() != history.len() {
        return Err(format!("{order:?} leaves operations out"));
    }

    // Real time: nothing later in the order returned before an earlier
    // operation was called. Comparing against the latest call so far is
    // enough.
    let mut latest_call: Option<usize> = None;
    for &op in order {
        if let Some(before) = latest_call {
            if history[op].ret < history[before].call {
                return Err(format!(
                    "{:?} is ordered after {:?}, which was called after it returned",
                    history[op], history[before]
                ));
            }
        }
        if latest_call.is_none_or(|before| history[op].call > history[before].call) {
            latest_call = Some(op);
        }
    }

    let mut state = spec.init();
    for &op in order {
        let target = &history[op];
        state = spec
            .step(&state, &target.input, &target.output)
            .ok_or_else(|| format!("{target:?} is not what the object answers in {state:?}"))?;
    }
    Ok(())
}

/// The longest order seen, kept up to date in amortized constant time per
/// step: only the part of the current order past what it shares with the
/// record is copied.
#[derive(Default)]
struct Longest {
    order: Vec<usize>,
    stuck: usize,
    /// How many leading entries `order` shares with the current choices.
    shared: usize,
}

impl Longest {
    fn record<T>(&mut self, chosen: &[(usize, T)], stuck: usize) {
        if chosen.len() > self.order.len() || self.order.is_empty() {
            self.order.truncate(self.shared);
            self.order
                .extend(chosen[self.shared..].iter().map(|(op, _)| *op));
            self.shared = chosen.len();
            self.stuck = stuck;
        }
    }

    fn popped(&mut self, remaining: usize) {
        self.shared = self.shared.min(remaining);
    }

    fn into_verdict(self) -> Verdict {
        Verdict::NotLinearizable {
            longest: self.order,
            stuck: self.stuck,
        }
    }
}

/// The calls and returns of a history as a doubly linked list, sorted by
/// instant, from which an operation's two events can be unlinked and linked
/// back in constant time.
///
/// Node 0 is a sentinel; the list is circular through it. Node `2 * op + 1`
/// is the call of operation `op` and node `2 * op + 2` its return.
struct Events {
    next: Vec<usize>,
    prev: Vec<usize>,
}

const SENTINEL: usize = 0;

impl Events {
    fn new<I, O>(history: &[Operation<I, O>]) -> Events {
        let mut order: Vec<usize> = (1..=2 * history.len()).collect();
        // (instant, returns after calls): touching intervals overlap.
        order.sort_by_key(|&node| {
            let op = &history[(node - 1) / 2];
            if node % 2 == 1 {
                (op.call, false)
            } else {
                (op.ret, true)
            }
        });

        let mut next = vec![SENTINEL; order.len() + 1];
        let mut prev = vec![SENTINEL; order.len() + 1];
        let mut last = SENTINEL;
        for node in order {
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        next[last] = SENTINEL;
        prev[SENTINEL] = last;
        Events { next, prev }
    }

    fn is_empty(&self) -> bool {
        self.next[SENTINEL] == SENTINEL
    }

    fn first(&self) -> usize {
        self.next[SENTINEL]
    }

    /// The node after `node`. Never the sentinel while the list is not
    /// empty and `node` is a call: its own return follows it.
    fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    fn op(&self, node: usize) -> usize {
        (node - 1) / 2
    }

    fn is_call(&self, node: usize) -> bool {
        node % 2 == 1
    }

    fn call_of(&self, op: usize) -> usize {
        2 * op + 1
    }

    /// Unlinks `op`'s call and return. Their own links are kept, so
    /// [`Events::unlift`] can put them back.
    fn lift(&mut self, op: usize) {
        for node in [2 * op + 1, 2 * op + 2] {
            let (before, after) = (self.prev[node], self.next[node]);
            self.next[before] = after;
            self.prev[after] = before;
        }
    }

    /// Links `op`'s return and call back, in the reverse order of
    /// [`Events::lift`]; valid when every lift since `op`'s was undone.
    fn unlift(&mut self, op: usize) {
        for node in [2 * op + 2, 2 * op + 1] {
            let (before, after) = (self.prev[node], self.next[node]);
            self.next[before] = node;
            self.prev[after] = node;
        }
    }
}

/// The set of linearized operations, as a bitset that also knows how many
/// of its leading words are full.
///
/// The cache stores only the words after the full prefix, trimmed of
/// trailing zeros: the search linearizes operations roughly in call order,
/// so that tail is a word or two however long the history. The pair
/// (full words, tail) determines the set, so equal sets give equal keys.
struct Linearized {
    words: Vec<u64>,
    /// Words `0..full` are all ones and `full` is not.
    full: usize,
    /// Bits set in total.
    ones: usize,
}

impl Linearized {
    fn new(len: usize) -> Linearized {
        Linearized {
            words: vec![0; len.div_ceil(64)],
            full: 0,
            ones: 0,
        }
    }

    fn insert(&mut self, op: usize) {
        let (word, bit) = (op / 64, 1u64 << (op % 64));
        debug_assert_eq!(self.words[word] & bit, 0);
        self.words[word] |= bit;
        self.ones += 1;
        while self.full < self.words.len() && self.words[self.full] == u64::MAX {
            self.full += 1;
        }
    }

    fn remove(&mut self, op: usize) {
        let (word, bit) = (op / 64, 1u64 << (op % 64));
        debug_assert_ne!(self.words[word] & bit, 0);
        self.words[word] &= !bit;
        self.ones -= 1;
        self.full = self.full.min(word);
    }

    fn prefix_words(&self) -> usize {
        self.full
    }

    /// The words after the full prefix, up to the last one with a bit set.
    fn rest(&self) -> Box<[u64]> {
        let mut left = self.ones - 64 * self.full;
        let mut end = self.full;
        while left > 0 {
            left -= self.words[end].count_ones() as usize;
            end += 1;
        }
        self.words[self.full..end].into()
    }
}
