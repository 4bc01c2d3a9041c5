//! Placeholder: the loom models live in `tests/`.
