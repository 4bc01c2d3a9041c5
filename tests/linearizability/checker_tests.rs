//! Tests of the checker alone, before it is trusted with ringkv's histories:
//! hand-written histories whose verdict is known, generated histories that
//! are linearizable by construction, the same with one answer corrupted, and
//! small random histories whose verdict an exhaustive search decides.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringkv::Bytes;

use super::checker::{check, validate, History, Operation, Spec, Verdict};
use super::register::{Answer, Call, Register};

type Op = Operation<Call, Answer>;

fn put(client: usize, call: u64, ret: u64, value: &'static str) -> Op {
    Operation {
        client,
        call,
        ret,
        input: Call::Put(Bytes::from_static(value.as_bytes())),
        output: Answer::Done,
    }
}

fn delete(client: usize, call: u64, ret: u64) -> Op {
    Operation {
        client,
        call,
        ret,
        input: Call::Delete,
        output: Answer::Done,
    }
}

fn get(client: usize, call: u64, ret: u64, read: Option<&'static str>) -> Op {
    Operation {
        client,
        call,
        ret,
        input: Call::Get,
        output: Answer::Read(read.map(|value| Bytes::from_static(value.as_bytes()))),
    }
}

/// Checks `history` with the register specification, expects a legal
/// order, and verifies that order independently.
fn assert_linearizable(history: &[Op]) {
    match check(&Register, history) {
        Verdict::Linearizable(order) => {
            if let Err(why) = validate(&Register, history, &order) {
                panic!("the checker's order is wrong: {why}\n{history:#?}");
            }
        }
        verdict => panic!("expected linearizable, got {verdict:?} for\n{history:#?}"),
    }
}

/// Checks `history`, expects no legal order, and returns the longest order
/// the search reported and the operation it was stuck on.
fn assert_not_linearizable(history: &[Op]) -> (Vec<usize>, usize) {
    match check(&Register, history) {
        Verdict::NotLinearizable { longest, stuck } => {
            // The reported prefix is itself legal.
            let prefix: Vec<Op> = longest.iter().map(|&op| history[op].clone()).collect();
            let renumbered: Vec<usize> = (0..prefix.len()).collect();
            if let Err(why) = validate(&Register, &prefix, &renumbered) {
                panic!("the longest order reported is illegal: {why}");
            }
            (longest, stuck)
        }
        verdict => panic!("expected not linearizable, got {verdict:?} for\n{history:#?}"),
    }
}

#[test]
fn an_empty_history_is_linearizable() {
    assert_eq!(check(&Register, &[]), Verdict::Linearizable(vec![]));
}

#[test]
fn a_get_of_an_empty_register_reads_nothing() {
    assert_linearizable(&[get(0, 0, 1, None)]);
    assert_not_linearizable(&[get(0, 0, 1, Some("a"))]);
}

#[test]
fn sequential_put_then_get_reads_the_value() {
    assert_linearizable(&[put(0, 0, 1, "a"), get(1, 2, 3, Some("a"))]);
    assert_not_linearizable(&[put(0, 0, 1, "a"), get(1, 2, 3, None)]);
}

#[test]
fn a_stale_read_after_a_completed_write_is_caught() {
    let history = [
        put(0, 0, 1, "a"),
        put(0, 2, 3, "b"),
        get(1, 4, 5, Some("a")),
    ];
    let (longest, stuck) = assert_not_linearizable(&history);
    assert_eq!(longest, [0, 1], "both puts fit; the get does not");
    assert_eq!(stuck, 2);
}

#[test]
fn a_read_of_a_value_never_written_is_caught() {
    assert_not_linearizable(&[
        put(0, 0, 10, "a"),
        put(1, 0, 10, "b"),
        get(2, 0, 10, Some("c")),
    ]);
}

#[test]
fn a_read_from_the_future_is_caught() {
    // The get returned before the put was called.
    assert_not_linearizable(&[get(0, 0, 1, Some("a")), put(1, 2, 3, "a")]);
}

#[test]
fn a_read_after_a_completed_delete_finds_nothing() {
    assert_linearizable(&[put(0, 0, 1, "a"), delete(0, 2, 3), get(1, 4, 5, None)]);
    assert_not_linearizable(&[put(0, 0, 1, "a"), delete(0, 2, 3), get(1, 4, 5, Some("a"))]);
}

#[test]
fn overlapping_operations_may_linearize_either_way() {
    // A get overlapping a put may see the register before or after it.
    assert_linearizable(&[put(0, 0, 10, "a"), get(1, 2, 3, None)]);
    assert_linearizable(&[put(0, 0, 10, "a"), get(1, 2, 3, Some("a"))]);
    // So may a get overlapping a delete.
    for read in [None, Some("a")] {
        assert_linearizable(&[put(0, 0, 1, "a"), delete(0, 2, 10), get(1, 3, 4, read)]);
    }
    // Two overlapping puts: a later get may see either, whichever went last.
    for read in ["a", "b"] {
        assert_linearizable(&[
            put(0, 0, 10, "a"),
            put(1, 0, 10, "b"),
            get(2, 11, 12, Some(read)),
        ]);
    }
}

#[test]
fn once_a_get_saw_a_put_a_later_get_cannot_miss_it() {
    // The put is still running, but the first get already saw it.
    assert_not_linearizable(&[
        put(0, 0, 10, "a"),
        get(1, 1, 2, Some("a")),
        get(2, 3, 4, None),
    ]);
    assert_linearizable(&[
        put(0, 0, 10, "a"),
        get(1, 1, 2, None),
        get(2, 3, 4, Some("a")),
    ]);
}

#[test]
fn two_readers_seeing_two_writes_in_opposite_orders_is_caught() {
    let writes = [put(0, 0, 20, "a"), put(1, 0, 20, "b")];
    let first_reader = [get(2, 1, 2, Some("a")), get(2, 3, 4, Some("b"))];

    let mut history = [writes.as_slice(), first_reader.as_slice()].concat();
    history.extend([get(3, 1, 2, Some("b")), get(3, 3, 4, Some("a"))]);
    assert_not_linearizable(&history);

    // Both readers agreeing on the order is fine.
    let mut history = [writes.as_slice(), first_reader.as_slice()].concat();
    history.extend([get(3, 1, 2, Some("a")), get(3, 3, 4, Some("b"))]);
    assert_linearizable(&history);
}

#[test]
fn intervals_that_touch_overlap() {
    // The get was called at the instant the put returned: they overlap, so
    // the get may precede the put.
    assert_linearizable(&[put(0, 0, 2, "a"), get(1, 2, 3, None)]);
    assert_not_linearizable(&[put(0, 0, 1, "a"), get(1, 2, 3, None)]);
}

#[test]
fn the_search_backtracks_past_a_wrong_first_choice() {
    // Three overlapping puts; sequential reads pin the order c, a, b. The
    // search tries a first, then b, and has to undo both.
    let history = [
        put(0, 0, 100, "a"),
        put(1, 0, 100, "b"),
        put(2, 0, 100, "c"),
        get(3, 10, 11, Some("c")),
        get(3, 12, 13, Some("a")),
        get(3, 14, 15, Some("b")),
    ];
    match check(&Register, &history) {
        Verdict::Linearizable(order) => assert_eq!(order, [2, 3, 0, 4, 1, 5]),
        verdict => panic!("expected linearizable, got {verdict:?}"),
    }

    // Reading c again after a would need c written twice.
    let mut history = history.to_vec();
    history.push(get(3, 16, 17, Some("c")));
    assert_not_linearizable(&history);
}

#[test]
fn deletes_and_puts_interleave_with_reads() {
    assert_linearizable(&[
        put(0, 0, 5, "a"),
        delete(1, 1, 6),
        get(2, 2, 3, Some("a")),
        get(2, 4, 7, None),
        put(0, 8, 9, "b"),
        get(1, 10, 11, Some("b")),
    ]);
    // The delete overlaps nothing later, so "a" cannot come back.
    assert_not_linearizable(&[
        put(0, 0, 5, "a"),
        delete(1, 1, 6),
        get(2, 7, 8, None),
        get(2, 9, 10, Some("a")),
    ]);
}

/// A second specification, to show the checker is not tied to registers: a
/// counter whose only operation adds and returns the previous total.
struct FetchAdd;

impl Spec for FetchAdd {
    type State = u64;
    type Input = u64;
    type Output = u64;

    fn init(&self) -> u64 {
        0
    }

    fn step(&self, total: &u64, add: &u64, previous: &u64) -> Option<u64> {
        (previous == total).then_some(total + add)
    }
}

fn fetch_add(client: usize, call: u64, ret: u64, add: u64, previous: u64) -> Operation<u64, u64> {
    Operation {
        client,
        call,
        ret,
        input: add,
        output: previous,
    }
}

#[test]
fn the_checker_is_generic_over_the_specification() {
    let both_saw_zero = [fetch_add(0, 0, 10, 1, 0), fetch_add(1, 0, 10, 1, 0)];
    assert!(!check(&FetchAdd, &both_saw_zero).is_linearizable());

    for (first, second) in [(0, 1), (1, 0)] {
        let history = [
            fetch_add(0, 0, 10, 1, first),
            fetch_add(1, 0, 10, 1, second),
            fetch_add(2, 11, 12, 5, 2),
        ];
        let Verdict::Linearizable(order) = check(&FetchAdd, &history) else {
            panic!("expected linearizable: {history:?}");
        };
        validate(&FetchAdd, &history, &order).unwrap();
    }
}

/// Picks an operation to run on a register holding `state`, with the answer
/// a sequential register gives, and returns it with the state after it.
/// Values are unique: `v0`, `v1`, ...
fn random_step(
    rng: &mut StdRng,
    state: &Option<Bytes>,
    written: &mut usize,
) -> (Call, Answer, Option<Bytes>) {
    match rng.gen_range(0..10) {
        0..=3 => {
            let value = Bytes::from(format!("v{written}"));
            *written += 1;
            (Call::Put(value.clone()), Answer::Done, Some(value))
        }
        4 => (Call::Delete, Answer::Done, None),
        _ => (Call::Get, Answer::Read(state.clone()), state.clone()),
    }
}

/// A history of `len` operations by `clients` clients that is linearizable
/// by construction: each operation takes effect at a chosen instant inside
/// its interval, the instants strictly increase, and each answer is what a
/// register gives at that instant. `spread` bounds how far an interval
/// reaches around its instant, so larger spreads mean more overlap. A
/// client's operations never overlap each other.
fn linearizable_history(rng: &mut StdRng, len: usize, clients: usize, spread: u64) -> Vec<Op> {
    let mut free = vec![0u64; clients];
    let mut state = None;
    let mut written = 0;
    let mut history = Vec::with_capacity(len);
    let mut instant = 0u64;
    while history.len() < len {
        instant += rng.gen_range(1..=4);
        let ready: Vec<usize> = (0..clients).filter(|&c| free[c] <= instant).collect();
        if ready.is_empty() {
            continue;
        }
        let client = ready[rng.gen_range(0..ready.len())];
        let call = rng.gen_range(free[client].max(instant.saturating_sub(spread))..=instant);
        let ret = instant + rng.gen_range(0..=spread);
        free[client] = ret + 1;

        let (input, output, after) = random_step(rng, &state, &mut written);
        state = after;
        history.push(Operation {
            client,
            call,
            ret,
            input,
            output,
        });
    }
    history
}

#[test]
fn generated_linearizable_histories_pass() {
    for seed in 0..400 {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(1..=150);
        let clients = rng.gen_range(1..=5);
        let spread = rng.gen_range(0..=40);
        let history = linearizable_history(&mut rng, len, clients, spread);
        assert_linearizable(&history);
    }
}

#[test]
fn a_long_generated_history_passes() {
    // Long enough that a cache holding whole bitsets would be slow.
    let mut rng = StdRng::seed_from_u64(7);
    let history = linearizable_history(&mut rng, 20_000, 4, 30);
    assert_linearizable(&history);
}

/// A value no generated history writes.
const NEVER_WRITTEN: &str = "never written";

#[test]
fn a_generated_history_with_a_read_of_an_unwritten_value_fails() {
    for seed in 0..300 {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(1..=150);
        let clients = rng.gen_range(1..=5);
        let spread = rng.gen_range(0..=40);
        let mut history = linearizable_history(&mut rng, len, clients, spread);
        let gets: Vec<usize> = (0..history.len())
            .filter(|&i| history[i].input == Call::Get)
            .collect();
        if gets.is_empty() {
            continue;
        }
        let victim = gets[rng.gen_range(0..gets.len())];
        history[victim].output = Answer::Read(Some(Bytes::from_static(NEVER_WRITTEN.as_bytes())));
        assert_not_linearizable(&history);
    }
}

#[test]
fn a_sequential_history_with_any_answer_changed_fails() {
    // With no overlap there is one order, so any wrong answer is caught, and
    // the search must report the operations before it as the longest order.
    let mut corrupted = 0;
    for seed in 0..400 {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(1..=80);
        let clients = rng.gen_range(1..=4);
        let mut history = linearizable_history(&mut rng, len, clients, 0);
        // Spread 0 makes each interval a single instant, strictly increasing.
        assert!(history.windows(2).all(|pair| pair[0].ret < pair[1].call));

        let gets: Vec<usize> = (0..history.len())
            .filter(|&i| history[i].input == Call::Get)
            .collect();
        if gets.is_empty() {
            continue;
        }
        let victim = gets[rng.gen_range(0..gets.len())];
        let Answer::Read(right) = history[victim].output.clone() else {
            unreachable!("a get answers with a read");
        };
        // Another value once written, nothing, or a value never written:
        // whichever differs from the right answer.
        let written: Vec<Bytes> = history
            .iter()
            .filter_map(|op| match &op.input {
                Call::Put(value) => Some(value.clone()),
                _ => None,
            })
            .collect();
        let mut candidates: Vec<Option<Bytes>> = written.into_iter().map(Some).collect();
        candidates.push(None);
        candidates.push(Some(Bytes::from_static(NEVER_WRITTEN.as_bytes())));
        candidates.retain(|candidate| *candidate != right);
        let wrong = candidates[rng.gen_range(0..candidates.len())].clone();
        history[victim].output = Answer::Read(wrong);

        let (longest, stuck) = assert_not_linearizable(&history);
        assert_eq!(longest, (0..victim).collect::<Vec<_>>(), "seed {seed}");
        assert_eq!(stuck, victim, "seed {seed}");
        corrupted += 1;
    }
    assert!(corrupted > 300, "only {corrupted} histories had a get");
}

/// Whether `history` is linearizable, by trying every order that respects
/// real time. Exponential; for a handful of operations.
fn brute_force<S: Spec>(spec: &S, history: &History<S>) -> bool {
    fn extend<S: Spec>(
        spec: &S,
        history: &History<S>,
        placed: &mut [bool],
        count: usize,
        state: &S::State,
    ) -> bool {
        if count == history.len() {
            return true;
        }
        for next in 0..history.len() {
            let must_wait = (0..history.len())
                .any(|other| !placed[other] && history[other].ret < history[next].call);
            if placed[next] || must_wait {
                continue;
            }
            let op = &history[next];
            if let Some(after) = spec.step(state, &op.input, &op.output) {
                placed[next] = true;
                if extend(spec, history, placed, count + 1, &after) {
                    return true;
                }
                placed[next] = false;
            }
        }
        false
    }
    extend(
        spec,
        history,
        &mut vec![false; history.len()],
        0,
        &spec.init(),
    )
}

#[test]
fn small_random_histories_agree_with_an_exhaustive_search() {
    // Arbitrary intervals and answers over a few values (repeats allowed),
    // so both verdicts are common.
    const VALUES: [&str; 3] = ["a", "b", "c"];
    let mut verdicts = [0usize; 2];
    for seed in 0..3_000 {
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(1..=7);
        let history: Vec<Op> = (0..len)
            .map(|i| {
                let call = rng.gen_range(0..20);
                let ret = call + rng.gen_range(0..8);
                let value = VALUES[rng.gen_range(0..VALUES.len())];
                match rng.gen_range(0..5) {
                    0 | 1 => put(i, call, ret, value),
                    2 => delete(i, call, ret),
                    3 => get(i, call, ret, None),
                    _ => get(i, call, ret, Some(value)),
                }
            })
            .collect();

        let expected = brute_force(&Register, &history);
        let verdict = check(&Register, &history);
        assert_eq!(
            verdict.is_linearizable(),
            expected,
            "seed {seed}: checker says {verdict:?}\n{history:#?}"
        );
        if let Verdict::Linearizable(order) = verdict {
            validate(&Register, &history, &order).unwrap();
        }
        verdicts[usize::from(expected)] += 1;
    }
    assert!(
        verdicts.iter().all(|&count| count > 500),
        "too few of one verdict to mean much: {verdicts:?} (not, linearizable)"
    );
}
