//! The [`Nemesis`] protocol (Jepsen's `Nemesis`), the no-op [`Noop`] and [`Compose`].

use serde_json::Value;

use crate::error::{NemesisError, collect};

/// Something that injects faults when the run's nemesis process asks (Jepsen's
/// `Nemesis`: `setup` is the constructor, `teardown` is [`Nemesis::heal`]).
///
/// The run loop logs an `invoke` line for process `nemesis`, calls
/// [`Nemesis::invoke`], and logs an `info` line with the value it returns. Faults are
/// applied synchronously: when `invoke` returns, the fault is in place (or lifted).
/// Random choices (which node, which topology) come from the nemesis's own seeded RNG,
/// so a run is replayable from its seed.
pub trait Nemesis: Send {
    /// The fault functions (`f` of the nemesis's operations) this nemesis handles, e.g.
    /// `["start-partition", "stop-partition"]`. Fixed for the nemesis's lifetime.
    fn fs(&self) -> &[&'static str];

    /// Applies (or lifts) the fault `f` with argument `value`, and returns the value
    /// describing what was done, for the history's `info` line, e.g.
    /// `{"isolated":[["n1","n2"],["n3","n4","n5"]]}` or `{"killed":["n3"]}`.
    ///
    /// An `f` not in [`Nemesis::fs`], or a value it does not understand, is an error
    /// that changes nothing. Any other error is a harness failure: the run stops and
    /// calls [`Nemesis::heal`]. Must not block longer than the fault takes to apply
    /// (bounded: every command has a timeout).
    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError>;

    /// Undoes every fault this nemesis put in place, whatever state it is in: heals
    /// partitions, resumes paused nodes, restarts killed ones. Used at the end of a run
    /// and on interrupt. Idempotent; tries everything even when a part fails, then
    /// reports the failures. Must not inject anything.
    fn heal(&mut self) -> Result<(), NemesisError>;
}

impl<N: Nemesis + ?Sized> Nemesis for Box<N> {
    fn fs(&self) -> &[&'static str] {
        (**self).fs()
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        (**self).invoke(f, value)
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        (**self).heal()
    }
}

/// The error for an `f` a nemesis does not handle.
pub(crate) fn unknown_f(f: &str, fs: &[&'static str]) -> NemesisError {
    NemesisError::UnknownF {
        f: f.to_string(),
        handled: fs.iter().map(|s| s.to_string()).collect(),
    }
}

/// A nemesis that handles nothing and heals trivially (runs without faults).
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl Nemesis for Noop {
    fn fs(&self) -> &[&'static str] {
        &[]
    }

    fn invoke(&mut self, f: &str, _: &Value) -> Result<Value, NemesisError> {
        Err(unknown_f(f, &[]))
    }

    fn heal(&mut self) -> Result<(), NemesisError> {
        Ok(())
    }
}

/// Several nemeses as one, dispatching each operation by its `f` (Jepsen's
/// `nemesis/compose`).
pub struct Compose {
    members: Vec<Box<dyn Nemesis>>,
    fs: Vec<&'static str>,
}

impl Compose {
    /// Composes `members`; two members handling the same `f` is an error.
    pub fn new(members: Vec<Box<dyn Nemesis>>) -> Result<Compose, NemesisError> {
        let mut fs: Vec<&'static str> = Vec::new();
        for member in &members {
            for f in member.fs() {
                if fs.contains(f) {
                    return Err(NemesisError::DuplicateF { f: f.to_string() });
                }
                fs.push(f);
            }
        }
        Ok(Compose { members, fs })
    }
}

impl Nemesis for Compose {
    fn fs(&self) -> &[&'static str] {
        &self.fs
    }

    fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
        match self.members.iter_mut().find(|m| m.fs().contains(&f)) {
            Some(member) => member.invoke(f, value),
            None => Err(unknown_f(f, &self.fs)),
        }
    }

    /// Heals every member, in order (put the partition nemesis first, so restarted
    /// nodes find their peers), even when one fails.
    fn heal(&mut self) -> Result<(), NemesisError> {
        collect(self.members.iter_mut().map(|m| m.heal()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A nemesis logging what it is asked to do.
    struct Log {
        fs: Vec<&'static str>,
        healed: usize,
    }

    impl Nemesis for Log {
        fn fs(&self) -> &[&'static str] {
            &self.fs
        }

        fn invoke(&mut self, f: &str, value: &Value) -> Result<Value, NemesisError> {
            Ok(json!({ "did": f, "with": value }))
        }

        fn heal(&mut self) -> Result<(), NemesisError> {
            self.healed += 1;
            Ok(())
        }
    }

    fn log(fs: &[&'static str]) -> Box<dyn Nemesis> {
        Box::new(Log {
            fs: fs.to_vec(),
            healed: 0,
        })
    }

    #[test]
    fn compose_dispatches_by_f_and_heals_all() {
        let mut n = Compose::new(vec![log(&["a", "b"]), log(&["c"]), Box::new(Noop)]).unwrap();
        assert_eq!(n.fs(), ["a", "b", "c"]);
        assert_eq!(
            n.invoke("c", &json!(1)).unwrap(),
            json!({"did": "c", "with": 1})
        );
        let err = n.invoke("d", &json!(null)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no nemesis handles f \"d\" (handled: a, b, c)"
        );
        n.heal().unwrap();
        n.heal().unwrap();
    }

    #[test]
    fn duplicate_fs_are_refused() {
        let err = Compose::new(vec![log(&["a", "b"]), log(&["b"])])
            .err()
            .unwrap();
        assert!(matches!(err, NemesisError::DuplicateF { f } if f == "b"));
        assert!(Noop.invoke("a", &json!(null)).is_err());
    }
}
