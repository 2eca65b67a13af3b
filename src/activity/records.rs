//! Audit blobs: a JSON array of records. Each record is kept as the exact
//! bytes Microsoft sent (for the sink) and read for only the four fields the
//! metrics need: no `serde_json::Value` tree is ever built, and unknown or
//! new fields cost a skip, not an allocation.
//!
//! One pass: the array's brackets and commas are read here, each element
//! is deserialised by serde_json straight from the blob (which validates
//! all of it, nested values included) and its extent gives the raw bytes.
//! The former design parsed every byte twice (a `Vec<&RawValue>`, then each
//! record again for its fields): BENCHMARKS.md, "Audit record parsing".

use crate::timefmt::{parse_unix, MAX_UNIX};
use bytes::Bytes;
use serde::Deserialize;
use std::borrow::Cow;
use std::io::{self, IoSlice, Write};
use std::ops::Range;

/// One audit record, borrowing from the blob's bytes.
#[derive(Debug)]
pub struct Record<'a> {
    /// The record exactly as sent.
    pub raw: &'a str,
    pub id: Option<Cow<'a, str>>,
    /// `CreationTime` (UTC without zone on the wire), Unix seconds.
    pub creation_time: Option<f64>,
    pub workload: Option<Cow<'a, str>>,
    pub operation: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "Id", borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "CreationTime", borrow, default)]
    creation_time: Option<Cow<'a, str>>,
    #[serde(rename = "Workload", borrow, default)]
    workload: Option<Cow<'a, str>>,
    #[serde(rename = "Operation", borrow, default)]
    operation: Option<Cow<'a, str>>,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// Parse a whole blob, or nothing: a blob that fails half-way is retried as
/// a whole, so no record is counted or written twice.
pub fn parse_blob(body: &[u8]) -> Result<Vec<Record<'_>>, String> {
    // UTF-8 checked once for the whole blob (serde_json's `from_slice`
    // would check every string and every raw value on its own).
    let text = std::str::from_utf8(body).map_err(|e| format!("blob is not UTF-8: {e}"))?;
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return Err("blob is not a JSON array".into());
    }
    i = skip_ws(b, i + 1);
    // A blob's records are 1–3 KB: reserve for that, not per push.
    let mut out = Vec::with_capacity(body.len() / 1_024 + 1);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let n = out.len();
            if b.get(i) != Some(&b'{') {
                return Err(format!(
                    "record {n} is not an audit record object (at byte {i})"
                ));
            }
            let mut one = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Fields<'_>>();
            let f = match one.next() {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    return Err(format!("record {n} is not an audit record object: {e}"))
                }
                None => return Err(format!("record {n} is missing")),
            };
            let end = i + one.byte_offset();
            out.push(Record {
                raw: &text[i..end],
                creation_time: f.creation_time.as_deref().and_then(creation_unix),
                id: f.id,
                workload: f.workload,
                operation: f.operation,
            });
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => {
                    return Err(format!(
                    "blob is not a JSON array: expected `,` or `]` after record {n} (at byte {i})"
                ))
                }
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(format!(
            "blob is not a JSON array: trailing characters at byte {i}"
        ));
    }
    Ok(out)
}

/// `CreationTime` as Microsoft writes it (`2026-11-27T08:01:02`, UTC
/// without a zone) read directly; any other form goes to [`parse_unix`]
/// (chrono's format parser costs about as much as a whole record's scan).
fn creation_unix(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return parse_unix(s);
    }
    let num = |from: usize, to: usize| {
        b[from..to]
            .iter()
            .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'))
    };
    let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (h, mi, sec) = (num(11, 13), num(14, 16), num(17, 19));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || sec > 59 {
        // Leap seconds and the like: chrono decides.
        return parse_unix(s);
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = (days * 86_400 + h * 3_600 + mi * 60 + sec) as f64;
    (0.0..=MAX_UNIX).contains(&t).then_some(t)
}

/// A blob's new records for the NDJSON sink: the blob's own bytes and the
/// extent of each record in them, written with vectored writes (each
/// record, then `\n`) so no copy of the blob is made. JSON strings cannot
/// hold a raw line break, so any CR/LF inside a record is insignificant
/// whitespace: such a record (rare) is written with those bytes turned into
/// spaces, equal in meaning and still one record per line.
#[derive(Debug, Clone)]
pub struct Lines {
    body: Bytes,
    spans: Vec<Range<usize>>,
}

impl Lines {
    pub fn new(body: Bytes) -> Lines {
        Lines {
            body,
            spans: Vec::new(),
        }
    }

    /// A single record (tests, tools).
    pub fn one(record: impl Into<Bytes>) -> Lines {
        let body = record.into();
        let spans = std::iter::once(0..body.len()).collect();
        Lines { body, spans }
    }

    /// Add `raw`, which must be a slice of this blob (a [`Record::raw`]);
    /// anything else is ignored.
    pub fn push(&mut self, raw: &str) {
        let start = (raw.as_ptr() as usize).wrapping_sub(self.body.as_ptr() as usize);
        if start <= self.body.len() && raw.len() <= self.body.len() - start {
            self.spans.push(start..start + raw.len());
        }
    }

    pub fn reserve(&mut self, records: usize) {
        self.spans.reserve(records);
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Bytes `write_to` writes.
    pub fn len(&self) -> usize {
        self.spans.iter().map(|r| r.len() + 1).sum()
    }

    /// Write every line (all of them, or an error).
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        // Records holding a raw line break, rewritten (rare).
        let fixed: Vec<Vec<u8>> = self
            .spans
            .iter()
            .map(|r| &self.body[r.clone()])
            .filter(|b| memchr::memchr2(b'\n', b'\r', b).is_some())
            .map(|b| {
                b.iter()
                    .map(|c| if matches!(c, b'\n' | b'\r') { b' ' } else { *c })
                    .collect()
            })
            .collect();
        let mut fixed = fixed.iter();
        let mut slices = Vec::with_capacity(2 * self.spans.len());
        for r in &self.spans {
            let b = &self.body[r.clone()];
            let b = match memchr::memchr2(b'\n', b'\r', b) {
                Some(_) => fixed.next().map_or(b, Vec::as_slice),
                None => b,
            };
            slices.push(IoSlice::new(b));
            slices.push(IoSlice::new(b"\n"));
        }
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            match w.write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_raw_bytes() {
        let body = br#"[{"CreationTime":"2025-11-27T10:00:00","Id":"4c6f0b7e-0000-4000-8000-000000000001","Operation":"FileDeleted","OrganizationId":"x","RecordType":6,"Workload":"SharePoint","ObjectId":"https:\/\/c.sharepoint.com\/a \"b\"","Extra":{"Nested":[1,2,{"Deep":null}]}},
        {"Id" : "weird\u0041id", "Workload":"Exchange"}]"#;
        let recs = parse_blob(body).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0].id.as_deref(),
            Some("4c6f0b7e-0000-4000-8000-000000000001")
        );
        assert_eq!(recs[0].creation_time, Some(1_764_237_600.0));
        assert_eq!(recs[0].workload.as_deref(), Some("SharePoint"));
        assert_eq!(recs[0].operation.as_deref(), Some("FileDeleted"));
        assert!(recs[0].raw.starts_with("{\"CreationTime\""));
        assert!(recs[0]
            .raw
            .contains(r#"https:\/\/c.sharepoint.com\/a \"b\""#));
        assert!(recs[0].raw.ends_with("}}"));
        // Escapes decode into an owned value; the raw text stays as sent.
        assert_eq!(recs[1].id.as_deref(), Some("weirdAid"));
        assert_eq!(
            recs[1].raw,
            r#"{"Id" : "weird\u0041id", "Workload":"Exchange"}"#
        );
        assert!(recs[1].creation_time.is_none() && recs[1].operation.is_none());
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{}",
            b"[{\"Id\":\"a\"}",
            b"[1]",
            b"[{\"Id\":5}]",
            b"[{\"Id\":\"\xff\"}]",
            b"\"string\"",
            b"[[]]",
            b"[{}",
            b"[{},]",
            b"[{} {}]",
            b"[{}]x",
            b"[{\"Id\":\"a\",\"Id\":\"b\"}]",
            b"[{\"A\":[1,}]",
            b"[{\"A\":\"\\q\"}]",
            b"\xef\xbb\xbf[]",
        ] {
            assert!(
                parse_blob(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_blob(b"[]").unwrap().is_empty());
        assert!(parse_blob(b" \n[ ]\r\n").unwrap().is_empty());
        assert_eq!(parse_blob(b"[ {} ,\n{\"Id\":\"x\"} ]\n").unwrap().len(), 2);
    }

    #[test]
    fn creation_time_fast_path_agrees_with_chrono() {
        for s in [
            "2026-11-27T08:01:02",
            "1970-01-01T00:00:00",
            "2024-02-29T23:59:59",
            "2000-03-01T00:00:00",
            "2100-02-28T12:00:00",
            "9999-12-31T23:59:59",
        ] {
            assert_eq!(creation_unix(s), parse_unix(s), "{s}");
            assert!(creation_unix(s).is_some(), "{s}");
        }
        for s in [
            "2025-02-29T00:00:00",
            "2026-13-01T00:00:00",
            "2026-00-10T00:00:00",
            "2026-04-31T00:00:00",
            "2026-11-27T24:00:00",
            "1969-12-31T23:59:59",
            "2026-11-27 08:01:02",
            "2026-11-27T08:01:02Z",
            "2026-11-27T08:01:02.5",
            "2026-11-27T08:01:60",
            "",
        ] {
            assert_eq!(creation_unix(s), parse_unix(s), "{s}");
        }
    }

    #[test]
    fn lines_stay_single() {
        let body = Bytes::from_static(b"[{\"a\":\r\n 1},{},\n{\"b\":\"\\n\"}]");
        let recs = parse_blob(&body).unwrap();
        let mut lines = Lines::new(body.clone());
        for r in &recs {
            lines.push(r.raw);
        }
        lines.push("{}"); // not part of the blob: ignored
        let mut out = Vec::new();
        lines.write_to(&mut out).unwrap();
        assert_eq!(out, b"{\"a\":   1}\n{}\n{\"b\":\"\\n\"}\n");
        assert_eq!(lines.len(), out.len());
    }

    /// A writer that takes a few bytes per call, as a full pipe or disk may.
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(3);
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume() {
        let body = Bytes::from_static(b"[{\"Id\":\"1\"},{\"Id\":\"2\"}]");
        let mut lines = Lines::new(body.clone());
        for r in parse_blob(&body).unwrap() {
            lines.push(r.raw);
        }
        let mut w = Trickle(Vec::new());
        lines.write_to(&mut w).unwrap();
        assert_eq!(w.0, b"{\"Id\":\"1\"}\n{\"Id\":\"2\"}\n");
    }
}
