//! The write-ahead log's framing: a record is `[length: u32 LE][crc32 of payload: u32
//! LE][payload]`. What the payload holds is the node's business (a tag byte and its
//! binary codec); this module only frames and unframes.

/// The length of a record's header: length and checksum.
pub const HEADER: usize = 8;

/// Larger records are taken as damage.
pub const MAX_RECORD: usize = 1 << 30;

/// Appends one framed record holding `payload` to `out`.
pub fn put_record(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The length field of the record header at `at`, if the buffer holds one.
pub fn length_at(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The payload of the record at `at` and the offset after it; `None` when the bytes
/// there do not form a record (a short buffer, a zero or oversized length, or a
/// payload that fails its checksum).
pub fn record_at(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = buf.get(at..at.checked_add(HEADER)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let end = at + HEADER + len;
    let payload = buf.get(at + HEADER..end)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Some((payload, end))
}

/// The byte ranges `(start, length)` of the whole records of a log image, in order,
/// found by their length fields alone (checksums are not checked; a torn tail, too
/// short for its header or its length, is not a record).
pub fn record_spans(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let Some(len) = length_at(buf, at) else {
            break;
        };
        let Some(end) = (at + HEADER).checked_add(len).filter(|e| *e <= buf.len()) else {
            break;
        };
        records.push((at, end - at));
        at = end;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_refused() {
        let mut buf = Vec::new();
        put_record(&mut buf, b"abc");
        put_record(&mut buf, b"hello");
        let (payload, next) = record_at(&buf, 0).unwrap();
        assert_eq!((payload, next), (&b"abc"[..], 11));
        assert_eq!(record_at(&buf, next).unwrap().0, b"hello");
        assert_eq!(record_spans(&buf), [(0, 11), (11, 13)]);
        buf[20] ^= 1;
        assert!(record_at(&buf, 11).is_none(), "checksum");
        assert_eq!(record_spans(&buf).len(), 2, "spans ignore checksums");
        assert!(record_at(&buf, 20).is_none(), "short");
        assert_eq!(length_at(&buf, 0), Some(3));
        assert_eq!(length_at(&buf, buf.len() - 2), None);
    }

    #[test]
    fn spans_stop_at_a_torn_tail() {
        let mut buf = Vec::new();
        for payload in [&b"abc"[..], b"", b"hello"] {
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(payload);
        }
        assert_eq!(record_spans(&buf), [(0, 11), (11, 8), (19, 13)]);
        buf.extend_from_slice(&[9, 0, 0, 0, 1, 2]);
        assert_eq!(record_spans(&buf).len(), 3);
        assert!(record_spans(&[]).is_empty());
    }
}
