//! Replays every input saved in `fuzz/regressions/` through the fuzz
//! target's harness (`tests/model/mod.rs`: decode, run against the crate and
//! the model, check after every step), on stable, in every `cargo test`.
//! A crash the fuzzer finds is saved there, named for the bug.

mod model;

use std::fs;
use std::path::{Path, PathBuf};

fn saved_inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_none_or(|ext| ext != "md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_fuzz_input_replays_cleanly() {
    let files = saved_inputs();
    assert!(!files.is_empty(), "fuzz/regressions/ holds no input");
    for file in files {
        let bytes = fs::read(&file).expect("a readable input");
        let (setup, ops) = model::decode(&bytes);
        println!("replaying {} ({} operations)", file.display(), ops.len());
        model::Run::run(&setup, &ops);
    }
}

/// The harness on inputs no fuzzer chose: the empty input, one byte, and a
/// few hundred pseudo-random byte strings from a fixed seed.
#[test]
fn arbitrary_bytes_decode_and_replay_cleanly() {
    model::Run::run(&model::decode(&[]).0, &[]);
    let (setup, ops) = model::decode(&[0xff]);
    assert!(ops.is_empty());
    model::Run::run(&setup, &ops);

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut byte = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    for case in 0..100 {
        let len = usize::from(byte()) + case % 7;
        let bytes: Vec<u8> = (0..len).map(|_| byte()).collect();
        let (setup, ops) = model::decode(&bytes);
        assert_eq!(ops.len(), (len.saturating_sub(2) / 4).min(64));
        model::Run::run(&setup, &ops);
    }
}
