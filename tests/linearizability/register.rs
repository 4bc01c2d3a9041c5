//! The sequential specification of one key: a register that is empty or
//! holds a value.

use ringkv::Bytes;

use super::checker::Spec;

/// One key of a key-value store, seen alone: `put` stores a value, `delete`
/// empties the register, `get` returns what it holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Register;

/// An operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Put(Bytes),
    Delete,
    Get,
}

/// What an operation on one key answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A put or delete was acknowledged.
    Done,
    /// A get returned this.
    Read(Option<Bytes>),
}

impl Spec for Register {
    type State = Option<Bytes>;
    type Input = Call;
    type Output = Answer;

    fn init(&self) -> Option<Bytes> {
        None
    }

    fn step(&self, state: &Option<Bytes>, call: &Call, answer: &Answer) -> Option<Option<Bytes>> {
        match (call, answer) {
            (Call::Put(value), Answer::Done) => Some(Some(value.clone())),
            (Call::Delete, Answer::Done) => Some(None),
            (Call::Get, Answer::Read(read)) if read == state => Some(state.clone()),
            _ => None,
        }
    }
}
