//! Byte-level building blocks that more than one layer writes with: text
//! escaping, numbers, protobuf varints, and the two stored forms of a
//! series' labels.
//!
//! A leaf: it uses nothing else in the crate. `metrics` builds a series'
//! label forms with it when the series is created, `encode` writes scrapes
//! with it, and `http` writes response heads with its numbers. So the
//! arrows stay one way (binary → http → metrics ← encode), and none of them
//! reaches into another for a helper.

pub(crate) mod escape;
pub(crate) mod label_forms;
pub(crate) mod number;
pub(crate) mod varint;
