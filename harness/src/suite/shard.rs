//! `faultline suite --shard K/N`: the K-th of N slices of a suite, for a CI job matrix.
//! A run's slice depends on its label alone (FNV-1a of the label, modulo N), so slices
//! are stable when the file's entries are reordered or others are added, and together
//! the N slices hold every run exactly once.

use std::fmt;
use std::str::FromStr;

/// One slice of N: `K/N`, 1 ≤ K ≤ N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: u32,
    /// How many slices.
    pub count: u32,
}

impl Shard {
    /// Whether the run labelled `label` is in this slice.
    pub fn holds(&self, label: &str) -> bool {
        fnv1a(label) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}`: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// 64-bit FNV-1a: fixed across platforms and releases (unlike `std`'s hasher).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        (0..180)
            .map(|i| format!("kv-{}-{} seed {}", i % 7, i / 7, i % 3))
            .collect()
    }

    #[test]
    fn the_slices_hold_every_run_once_whatever_the_order() {
        let n = 4;
        let shards: Vec<Shard> = (1..=n)
            .map(|k| format!("{k}/{n}").parse().unwrap())
            .collect();
        let mut labels = labels();
        let slice = |labels: &[String], s: &Shard| -> Vec<String> {
            let mut v: Vec<String> = labels.iter().filter(|l| s.holds(l)).cloned().collect();
            v.sort();
            v
        };
        let before: Vec<Vec<String>> = shards.iter().map(|s| slice(&labels, s)).collect();
        assert_eq!(before.iter().map(Vec::len).sum::<usize>(), labels.len());
        // Roughly even: no slice has under half or over twice its share.
        for part in &before {
            assert!((22..=90).contains(&part.len()), "{}", part.len());
        }
        labels.reverse();
        let after: Vec<Vec<String>> = shards.iter().map(|s| slice(&labels, s)).collect();
        assert_eq!(before, after);
        // Fixed across releases: a known label's slice.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn k_of_n_is_parsed_and_bad_ones_refused() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected K/N"), "{bad}: {e}");
        }
    }
}
