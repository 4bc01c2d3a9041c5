//! Decodes arbitrary bytes into a cluster setup and a sequence of operations
//! (bad input included), runs them against ringkv and the reference model of
//! `tests/model/mod.rs`, and panics on any disagreement or broken invariant.
//!
//! A crashing input goes into `fuzz/regressions/`, which
//! `tests/fuzz_regressions.rs` replays on stable in every `cargo test`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    let (setup, ops) = model::decode(data);
    model::Run::run(&setup, &ops);
});
