//! Cycle classes as small automata over the relationships a cycle steps along:
//! which steps a G0, G1c, G-single, G-nonadjacent or G2-item cycle (and their
//! -process and -realtime variants) may take, and Elle's naming of a finished cycle.

use super::graph::rel;
use super::model;

/// The relationship a cycle step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// Write-write.
    Ww,
    /// Write-read.
    Wr,
    /// Read-write (anti-dependency).
    Rw,
    /// Process order.
    Process,
    /// Real-time order.
    Realtime,
}

impl Label {
    pub(crate) fn of_bit(bit: u8) -> Option<Label> {
        match bit {
            rel::WW => Some(Label::Ww),
            rel::WR => Some(Label::Wr),
            rel::RW => Some(Label::Rw),
            rel::PROCESS => Some(Label::Process),
            rel::REALTIME => Some(Label::Realtime),
            _ => None,
        }
    }

    /// The relationship bit.
    pub(crate) fn bit(self) -> u8 {
        match self {
            Label::Ww => rel::WW,
            Label::Wr => rel::WR,
            Label::Rw => rel::RW,
            Label::Process => rel::PROCESS,
            Label::Realtime => rel::REALTIME,
        }
    }
}

/// Elle's name for a cycle with these steps (`labels[i]` leads from the i-th
/// transaction to the next, cyclically).
pub(crate) fn classify(labels: &[Label]) -> Option<String> {
    let count = |l: Label| labels.iter().filter(|x| **x == l).count();
    let n = labels.len();
    let adjacent = (0..n).any(|i| labels[i] == Label::Rw && labels[(i + 1) % n] == Label::Rw);
    let rw = count(Label::Rw);
    let base = if rw == 1 {
        "G-single"
    } else if rw > 1 {
        if adjacent { "G2-item" } else { "G-nonadjacent" }
    } else if count(Label::Wr) > 0 {
        "G1c"
    } else if count(Label::Ww) > 0 {
        "G0"
    } else {
        return None;
    };
    let suffix = if count(Label::Realtime) > 0 {
        "-realtime"
    } else if count(Label::Process) > 0 {
        "-process"
    } else {
        ""
    };
    Some(format!("{base}{suffix}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    G0,
    G1c,
    GSingle,
    GNonadjacent,
    G2Item,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Plain,
    Process,
    Realtime,
}

/// A cycle class to look for.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub name: String,
    base: Base,
    variant: Variant,
}

// Automaton state bits: got the variant's edge, last step was rw, two or more rw.
const X: u8 = 1;
const L: u8 = 2;
const M: u8 = 4;
pub(crate) const STATES: usize = 8;

impl Spec {
    pub(crate) fn all(process: bool, realtime: bool) -> Vec<Spec> {
        let bases = [
            (Base::G0, "G0"),
            (Base::G1c, "G1c"),
            (Base::GSingle, "G-single"),
            (Base::GNonadjacent, "G-nonadjacent"),
            (Base::G2Item, "G2-item"),
        ];
        let mut variants = vec![(Variant::Plain, "")];
        if process {
            variants.push((Variant::Process, "-process"));
        }
        if realtime {
            variants.push((Variant::Realtime, "-realtime"));
        }
        let mut specs: Vec<Spec> = variants
            .iter()
            .flat_map(|(variant, suffix)| {
                bases.iter().map(move |(base, name)| Spec {
                    name: format!("{name}{suffix}"),
                    base: *base,
                    variant: *variant,
                })
            })
            .collect();
        let depths = model::anomaly_depths();
        specs.sort_by(|a, b| {
            let da = depths.get(a.name.as_str()).copied().unwrap_or(0);
            let db = depths.get(b.name.as_str()).copied().unwrap_or(0);
            da.cmp(&db).then_with(|| a.name.cmp(&b.name))
        });
        specs
    }

    /// Relationships the cycle may use (time edges go with real time).
    pub(crate) fn legal(&self) -> u8 {
        let base = match self.base {
            Base::G0 => rel::WW,
            Base::G1c => rel::WW | rel::WR,
            _ => rel::DATA,
        };
        base | match self.variant {
            Variant::Plain => 0,
            Variant::Process => rel::PROCESS,
            Variant::Realtime => rel::REALTIME | rel::TIME,
        }
    }

    /// The relationship of the first step from the anchor.
    pub(crate) fn first(&self) -> u8 {
        match (self.base, self.variant) {
            (Base::G0, Variant::Plain) => rel::WW,
            (Base::G0, Variant::Process) => rel::PROCESS,
            (Base::G0, Variant::Realtime) => rel::REALTIME,
            (Base::G1c, _) => rel::WR,
            _ => rel::RW,
        }
    }

    pub(crate) fn init(&self) -> u8 {
        match self.base {
            Base::G0 if self.variant != Variant::Plain => X,
            Base::GSingle | Base::GNonadjacent | Base::G2Item => L,
            _ => 0,
        }
    }

    pub(crate) fn step(&self, st: u8, bit: u8) -> Option<u8> {
        match bit {
            rel::TIME => (self.variant == Variant::Realtime).then_some(st),
            rel::REALTIME => (self.variant == Variant::Realtime).then_some((st | X) & !L),
            rel::PROCESS => (self.variant == Variant::Process).then_some((st | X) & !L),
            rel::WW => Some(st & !L),
            rel::WR => (self.base != Base::G0).then_some(st & !L),
            rel::RW => match self.base {
                Base::GNonadjacent => (st & L == 0).then_some(st | L | M),
                Base::G2Item => Some(st | L | M),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn accept(&self, st: u8) -> bool {
        let x = self.variant == Variant::Plain || st & X != 0;
        match self.base {
            Base::GNonadjacent => x && st & M != 0 && st & L == 0,
            Base::G2Item => x && st & L != 0,
            _ => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_elle() {
        use Label::*;
        assert_eq!(classify(&[Ww, Ww]).as_deref(), Some("G0"));
        assert_eq!(classify(&[Ww, Wr]).as_deref(), Some("G1c"));
        assert_eq!(classify(&[Rw, Wr]).as_deref(), Some("G-single"));
        assert_eq!(
            classify(&[Rw, Wr, Rw, Ww]).as_deref(),
            Some("G-nonadjacent")
        );
        assert_eq!(classify(&[Rw, Rw]).as_deref(), Some("G2-item"));
        assert_eq!(classify(&[Rw, Ww, Rw]).as_deref(), Some("G2-item"));
        assert_eq!(
            classify(&[Rw, Realtime]).as_deref(),
            Some("G-single-realtime")
        );
        assert_eq!(classify(&[Ww, Process]).as_deref(), Some("G0-process"));
        assert_eq!(classify(&[Process, Realtime]), None);
    }

    #[test]
    fn specs_in_elle_order() {
        let names: Vec<String> = Spec::all(true, true).into_iter().map(|s| s.name).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert!(pos("G0") < pos("G1c"));
        assert!(pos("G1c") < pos("G-single"));
        assert!(pos("G-single") < pos("G-nonadjacent"));
        assert!(pos("G-nonadjacent") < pos("G0-process"));
        assert!(pos("G2-item-process") < pos("G0-realtime"));
    }
}
