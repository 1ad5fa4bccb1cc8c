//! Names that become path components: a run's `--name` (its directory in the store), an
//! SSH host's `name` (its directory on the host, `/tmp/faultline-RUN/NAME`). One rule for
//! both, so no name can climb out of its parent directory or pass for an option.

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// Checks that `name` is safe as one path component and as a command argument: 1 to
/// [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_` and `.`, not starting with `.` or `-`
/// (so no `..`, no `/`, no NUL, no hidden file, no option). The error says what is wrong
/// and what to use instead, quoting the name (escaped), e.g.
/// ``"`../x`: use letters, digits, `-`, `_` and `.` (not first), at most 128 characters"``.
pub fn check_name(name: &str) -> Result<(), String> {
    const RULE: &str = "use letters, digits, `-`, `_` and `.` (not first)";
    let quoted = name.escape_debug();
    if name.is_empty() {
        return Err(format!("empty name; {RULE}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "`{quoted}` is {} characters long; use at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if !name.chars().all(allowed) || name.starts_with(['.', '-']) {
        return Err(format!(
            "`{quoted}`; {RULE}, at most {MAX_NAME_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in [
            "n1",
            "kv-register",
            "db1.example.com",
            "10.0.0.1",
            "a_b",
            "x",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        assert_eq!(check_name(&"a".repeat(MAX_NAME_LEN)), Ok(()));
    }

    #[test]
    fn path_traversal_and_odd_names_are_refused() {
        let cases = [
            ("..", "`..`; use letters"),
            ("../../../tmp/x", "`../../../tmp/x`; use letters"),
            ("a/b", "`a/b`; use letters"),
            ("/abs", "`/abs`; use letters"),
            (".hidden", "`.hidden`; use letters"),
            ("-rf", "`-rf`; use letters"),
            ("a b", "`a b`; use letters"),
            ("a\0b", "`a\\0b`; use letters"),
            ("n\u{e9}", "`n\u{e9}`; use letters"),
            ("", "empty name"),
        ];
        for (name, expected) in cases {
            let err = check_name(name).unwrap_err();
            assert!(err.starts_with(expected), "{name:?}: {err}");
            assert!(!err.contains('\0'), "{err:?}");
        }
    }

    #[test]
    fn too_long_names_are_refused_with_the_limit() {
        let err = check_name(&"a".repeat(MAX_NAME_LEN + 1)).unwrap_err();
        assert!(
            err.ends_with("is 129 characters long; use at most 128"),
            "{err}"
        );
    }
}
