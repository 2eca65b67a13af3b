//! Audit blobs: a JSON array of records. Each record is kept as the exact
//! bytes Microsoft sent (for the sink) and read for only the four fields the
//! metrics need: no `serde_json::Value` tree is ever built, and unknown or
//! new fields cost a skip, not an allocation.

use crate::timefmt::parse_unix;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

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

/// Parse a whole blob, or nothing: a blob that fails half-way is retried as
/// a whole, so no record is counted or written twice.
pub fn parse_blob(body: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let raws: Vec<&RawValue> =
        serde_json::from_slice(body).map_err(|e| format!("blob is not a JSON array: {e}"))?;
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let f: Fields<'_> = serde_json::from_str(raw.get())
                .map_err(|e| format!("record {i} is not an audit record object: {e}"))?;
            Ok(Record {
                raw: raw.get(),
                id: f.id,
                creation_time: f.creation_time.as_deref().and_then(parse_unix),
                workload: f.workload,
                operation: f.operation,
            })
        })
        .collect()
}

/// Append `raw` as one NDJSON line. JSON strings cannot hold a raw line
/// break, so any CR/LF in a record is insignificant whitespace: turning it
/// into a space keeps the record byte-for-byte equal in meaning and the
/// output one record per line.
pub fn push_line(out: &mut Vec<u8>, raw: &str) {
    let start = out.len();
    out.extend_from_slice(raw.as_bytes());
    for b in &mut out[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.push(b'\n');
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
        ] {
            assert!(
                parse_blob(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_blob(b"[]").unwrap().is_empty());
    }

    #[test]
    fn lines_stay_single() {
        let mut out = Vec::new();
        push_line(&mut out, "{\"a\":\r\n 1}");
        push_line(&mut out, "{}");
        assert_eq!(out, b"{\"a\":   1}\n{}\n");
    }
}
