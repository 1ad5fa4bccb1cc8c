use super::*;

/// An ed25519 public key blob, as in a known_hosts line.
const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJW6iT2XBb2OKcsul1/kgyaE2flEJyMwz2gbZxHXv99K";
/// Another key.
const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIFVG0bQ8o+ZjZkKDM1q4v9jFp2pXqGgbzEJ4hJq+TTaB";

fn key() -> Vec<u8> {
    STANDARD.decode(KEY).unwrap()
}

fn check(text: &str, address: &str, port: u16) -> Verdict {
    KnownHosts::parse(text)
        .unwrap()
        .check(address, port, &key())
}

#[test]
fn a_plain_entry_is_for_port_22_only() {
    let text = format!("10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
    assert_eq!(check(&text, "10.0.0.5", 2222), Verdict::NotFound);
    assert_eq!(check(&text, "10.0.0.6", 22), Verdict::NotFound);
}

#[test]
fn a_bracketed_entry_is_for_its_port_only() {
    let text = format!("[10.0.0.5]:2222 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 2222), Verdict::Match);
    assert_eq!(check(&text, "10.0.0.5", 2223), Verdict::NotFound);
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::NotFound);
    // `[host]:22` is not how OpenSSH looks up port 22.
    let text = format!("[10.0.0.5]:22 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::NotFound);
}

#[test]
fn another_key_for_the_host_is_a_mismatch_and_any_matching_line_wins() {
    let text = format!("10.0.0.5 ssh-ed25519 {OTHER}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Mismatch);
    let text = format!("10.0.0.5 ssh-ed25519 {OTHER}\n10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
}

#[test]
fn revoked_keys_are_refused_even_when_another_line_accepts_them() {
    let text = format!(
        "10.0.0.5 ssh-ed25519 {KEY}\n# revoked after the break-in\n@revoked 10.0.0.5 ssh-ed25519 {KEY}\n"
    );
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Revoked(3));
    let text = format!("@revoked * ssh-ed25519 {KEY}\n[h]:2222 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "h", 2222), Verdict::Revoked(1));
    // A revoked line for another key or another host does not refuse this one.
    let text = format!("@revoked 10.0.0.5 ssh-ed25519 {OTHER}\n10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
    let text = format!("@revoked other ssh-ed25519 {KEY}\n10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
}

#[test]
fn cert_authority_lines_are_not_host_keys() {
    let text = format!("@cert-authority 10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::NotFound);
    let text = format!("@cert-authority * ssh-ed25519 {OTHER}\n10.0.0.5 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
}

#[test]
fn comments_blank_lines_and_trailing_comments_are_ignored() {
    let text = format!("# a comment\n\n   \n  # indented\n10.0.0.5 ssh-ed25519 {KEY} root@there\n");
    assert_eq!(check(&text, "10.0.0.5", 22), Verdict::Match);
    assert_eq!(check("# nothing\n", "10.0.0.5", 22), Verdict::NotFound);
}

#[test]
fn patterns_lists_wildcards_negation_and_case() {
    let text = format!("a.example,B.EXAMPLE ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "b.example", 22), Verdict::Match);
    assert_eq!(check(&text, "A.Example", 22), Verdict::Match);
    let text = format!("*.lab,!db3.lab ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "db1.lab", 22), Verdict::Match);
    assert_eq!(check(&text, "db3.lab", 22), Verdict::NotFound);
    assert_eq!(check(&text, "db1.lab", 2222), Verdict::NotFound);
    let text = format!("[10.0.0.?]:2222 ssh-ed25519 {KEY}\n");
    assert_eq!(check(&text, "10.0.0.7", 2222), Verdict::Match);
    assert_eq!(check(&text, "10.0.0.17", 2222), Verdict::NotFound);
    assert!(wildcard(b"a*b*c", b"aXbYbZc"));
    assert!(!wildcard(b"a*b*c", b"aXbYbZ"));
}

#[test]
fn hashed_entries_match_plain_and_bracketed_names() {
    // Written by `ssh-keygen -H` from "10.0.0.5 KEY" and "[10.0.0.5]:2222 KEY".
    let text = format!(
        "|1|3Z0y/t2yW6NlFT4fmShH+C01QUw=|xnqif2fejQLfBsT4LFNp9noC27U= ssh-ed25519 {KEY}\n\
         |1|NXwzhKy/kA5Q5mbdMgcpS2h7iqs=|LINuC8wWjIsRzyC07tlk8tu/k1M= ssh-ed25519 {KEY}\n"
    );
    let file = KnownHosts::parse(&text).unwrap();
    assert_eq!(file.check("10.0.0.5", 22, &key()), Verdict::Match);
    assert_eq!(file.check("10.0.0.5", 2222, &key()), Verdict::Match);
    assert_eq!(file.check("10.0.0.5", 2223, &key()), Verdict::NotFound);
    assert_eq!(file.check("10.0.0.6", 22, &key()), Verdict::NotFound);
    let port_22_only = text.lines().next().unwrap();
    assert_eq!(check(port_22_only, "10.0.0.5", 2222), Verdict::NotFound);
    // A hashed @revoked line refuses the key too.
    let revoked = format!("{text}@revoked {}\n", port_22_only);
    assert_eq!(check(&revoked, "10.0.0.5", 22), Verdict::Revoked(3));
}

#[test]
fn malformed_lines_are_errors_naming_the_line() {
    let cases = [
        (
            "h ssh-ed25519\n",
            "line 1: expected `[MARKER] HOSTS KEY-TYPE BASE64-KEY",
        ),
        (
            "# c\nh ssh-ed25519 not*base64\n",
            "line 2: the key is not base64",
        ),
        (
            "@bogus h ssh-ed25519 AAAA\n",
            "line 1: unknown marker `@bogus`",
        ),
        ("@revoked\n", "line 1: expected"),
        (
            "|2|abc|def ssh-ed25519 AAAA\n",
            "line 1: hashed host `|2|abc|def`: unknown hash type 2",
        ),
        (
            "|1|abc ssh-ed25519 AAAA\n",
            "line 1: hashed host `|1|abc` is not |1|SALT|HASH",
        ),
        ("a,,b ssh-ed25519 AAAA\n", "line 1: empty host pattern"),
    ];
    for (text, expected) in cases {
        let err = KnownHosts::parse(text).unwrap_err();
        assert!(err.starts_with(expected), "{text:?}: {err}");
    }
}

#[test]
fn lookup_names_follow_openssh() {
    assert_eq!(lookup_name("Db1.Lab", 22), "db1.lab");
    assert_eq!(lookup_name("10.0.0.5", 2222), "[10.0.0.5]:2222");
}
