//! Reading a log file line by line with bounded memory: lines longer than
//! [`MAX_LINE`] bytes are cut there, invalid UTF-8 is replaced, and a second pass
//! fetches only the lines quoted as evidence.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// Bytes of a line that are looked at (and quoted); the rest is skipped.
pub const MAX_LINE: usize = 16 * 1024;

/// Calls `each(number, line)` for every line of `path`, numbered from 1.
pub fn for_each_line(path: &Path, mut each: impl FnMut(u32, &str)) -> io::Result<()> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    let mut number: u32 = 0;
    while read_line(&mut reader, &mut buf)? {
        number = number.saturating_add(1);
        let text = String::from_utf8_lossy(&buf);
        each(number, text.trim_end_matches(['\n', '\r']));
    }
    Ok(())
}

/// The lines of `path` whose numbers are in `wanted`.
pub fn fetch(path: &Path, wanted: &BTreeSet<u32>) -> io::Result<HashMap<u32, String>> {
    let mut lines = HashMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(lines);
    };
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    let mut number: u32 = 0;
    while number < last && read_line(&mut reader, &mut buf)? {
        number = number.saturating_add(1);
        if wanted.contains(&number) {
            let text = String::from_utf8_lossy(&buf);
            lines.insert(number, text.trim_end_matches(['\n', '\r']).to_string());
        }
    }
    Ok(lines)
}

/// Reads the next line into `buf` (at most [`MAX_LINE`] bytes of it, the rest skipped);
/// false at the end of the file.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() != Some(&b'\n') && n == MAX_LINE {
        // Skip the rest of an over-long line.
        loop {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    reader.consume(i + 1);
                    break;
                }
                None => {
                    let len = available.len();
                    reader.consume(len);
                }
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_numbering_stays_right() {
        let dir = std::env::temp_dir().join(format!("nodelog-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.log");
        let long = "x".repeat(MAX_LINE * 2 + 3);
        std::fs::write(&path, format!("one\n{long}\nthree\r\nfour")).unwrap();
        let mut seen = Vec::new();
        for_each_line(&path, |n, line| {
            seen.push((n, line.len(), line.to_string()))
        })
        .unwrap();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].1, MAX_LINE);
        assert_eq!((seen[2].0, seen[2].2.as_str()), (3, "three"));
        assert_eq!((seen[3].0, seen[3].2.as_str()), (4, "four"));
        let fetched = fetch(&path, &BTreeSet::from([1, 4])).unwrap();
        assert_eq!(fetched[&1], "one");
        assert_eq!(fetched[&4], "four");
        assert_eq!(fetched.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
