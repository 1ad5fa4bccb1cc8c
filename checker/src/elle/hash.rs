//! Fast, non-cryptographic hash maps for the checker's integer-keyed indices (the
//! rustc "Fx" hash): inputs are the history's own values, so there is no adversary
//! to defend against, and std's SipHash would cost more than the rest of a lookup.

pub(crate) use rustc_hash::{FxHashMap, FxHashSet};
