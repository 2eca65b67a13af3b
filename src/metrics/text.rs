//! Prometheus text exposition (0.0.4) for snapshot families.
//!
//! Every family is declared once in the catalog ([`Family`], with its HELP,
//! TYPE and labels); a collector writes sample lines per family into a
//! [`SnapshotWriter`]; the server groups the lines of all tenants under one
//! HELP/TYPE header, as the format requires.

use super::catalog::Family;
use std::fmt::Write as _;

/// Sample lines per family, built once per refresh and then only read.
#[derive(Debug, Default, Clone)]
pub struct SnapshotWriter {
    lines: Vec<(Family, String)>,
    ages: Vec<Age>,
}

/// A sample whose value is an age, `now − since` (0 without `since`),
/// computed when it is written out: at scrape time, not at refresh time.
#[derive(Debug, Clone)]
pub struct Age {
    family: Family,
    /// `name{labels}` and a space.
    prefix: String,
    since: Option<i64>,
}

impl SnapshotWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append one sample; label values are escaped here.
    pub fn sample(&mut self, fam: Family, labels: &[(&str, &str)], value: f64) {
        let idx = match self.lines.binary_search_by_key(&fam, |(f, _)| *f) {
            Ok(i) => i,
            Err(i) => {
                self.lines.insert(i, (fam, String::new()));
                i
            }
        };
        let buf = &mut self.lines[idx].1;
        write_sample(buf, fam.name(), labels, value);
    }

    /// Append a sample valued `now − since` at scrape time (0 when `since`
    /// is None): a lag that keeps growing while nothing refreshes it.
    pub fn age(&mut self, fam: Family, labels: &[(&str, &str)], since: Option<i64>) {
        let mut prefix = String::new();
        write_sample(&mut prefix, fam.name(), labels, 0.0);
        prefix.truncate(prefix.len() - "0\n".len());
        self.ages.push(Age {
            family: fam,
            prefix,
            since,
        });
    }

    /// Freeze into the rendered form kept by a snapshot: every family's
    /// text in one buffer of exactly its length, each with its
    /// [`content_hash`], computed here once so that a gzip scrape finds its
    /// cached segments without reading the text.
    pub fn finish(self) -> Rendered {
        // A snapshot is kept until the next refresh, once per tenant and
        // collector: one block instead of one per family (each rounded up
        // to its allocator size class, and small blocks of long-lived
        // snapshots left holes in the allocator's slabs between refreshes
        // of 1,000 tenants: BENCHMARKS.md, "Per tenant").
        let mut text = String::with_capacity(self.lines.iter().map(|(_, t)| t.len()).sum());
        let families = self
            .lines
            .into_iter()
            .map(|(family, part)| {
                let start = text.len();
                text.push_str(&part);
                Chunk {
                    family,
                    start,
                    end: text.len(),
                    hash: content_hash(part.as_bytes()),
                }
            })
            .collect();
        Rendered {
            text,
            families,
            ages: self.ages,
        }
    }
}

/// One family's sample lines of one snapshot: a range of
/// [`Rendered::text`].
#[derive(Debug, Clone)]
pub struct Chunk {
    pub family: Family,
    start: usize,
    end: usize,
    /// [`content_hash`] of its text.
    pub hash: u64,
}

/// Immutable sample text per family (sorted by family), and ages.
#[derive(Debug, Default, Clone)]
pub struct Rendered {
    /// Every family's lines, in family order.
    text: String,
    pub families: Vec<Chunk>,
    pub ages: Vec<Age>,
}

impl Rendered {
    /// The lines of `chunk` (one of [`Rendered::families`]).
    pub fn text(&self, chunk: &Chunk) -> &str {
        self.text.get(chunk.start..chunk.end).unwrap_or_default()
    }

    /// A family's fixed lines (without its ages), if it has any.
    pub fn chunk(&self, fam: Family) -> Option<&Chunk> {
        self.families
            .binary_search_by_key(&fam, |c| c.family)
            .ok()
            .map(|i| &self.families[i])
    }

    pub fn get(&self, fam: Family) -> Option<&[u8]> {
        self.chunk(fam).map(|c| self.text(c).as_bytes())
    }

    pub fn has_ages(&self, fam: Family) -> bool {
        self.ages.iter().any(|a| a.family == fam)
    }

    /// Write a family's ages as of `now` (Unix seconds).
    pub fn write_ages(&self, fam: Family, now: i64, out: &mut String) {
        for a in self.ages.iter().filter(|a| a.family == fam) {
            out.push_str(&a.prefix);
            write_value(out, a.since.map_or(0, |t| (now - t).max(0)) as f64);
            out.push('\n');
        }
    }

    /// Write a family's samples as of `now`: the fixed lines, then the ages.
    pub fn write(&self, fam: Family, now: i64, out: &mut String) {
        if let Some(c) = self.chunk(fam) {
            out.push_str(self.text(c));
        }
        self.write_ages(fam, now, out);
    }

    pub fn len_bytes(&self) -> usize {
        self.text.len()
    }
}

/// A 64-bit hash of `bytes`, keyed per process (SipHash with random keys,
/// so text from outside cannot be crafted to collide): identifies exposition
/// text that a gzip scrape may serve compressed from its cache.
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEYS.get_or_init(std::hash::RandomState::new)
        .hash_one(bytes)
}

pub fn write_sample(buf: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    buf.push_str(name);
    if !labels.is_empty() {
        buf.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            buf.push_str(k);
            buf.push_str("=\"");
            escape_label(buf, v);
            buf.push('"');
        }
        buf.push('}');
    }
    buf.push(' ');
    write_value(buf, value);
    buf.push('\n');
}

pub(crate) fn write_value(buf: &mut String, v: f64) {
    if v.is_nan() {
        buf.push_str("NaN");
    } else if v.is_infinite() {
        buf.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        write_int(buf, v as i64);
    } else {
        let _ = write!(buf, "{v}");
    }
}

/// Decimal digits without `core::fmt` (a scrape writes thousands).
pub(crate) fn write_int(buf: &mut String, v: i64) {
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        buf.push('-');
    }
    // ASCII digits only.
    buf.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

pub(crate) fn escape_label(buf: &mut String, v: &str) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        buf.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => buf.push_str("\\\\"),
            '"' => buf.push_str("\\\""),
            '\n' => buf.push_str("\\n"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        let mut w = SnapshotWriter::new();
        w.sample(Family::IssueInfo, &[("title", "a \"b\"\\\nc")], 1.0);
        w.sample(Family::BuildInfo, &[], 1.5);
        let r = w.finish();
        assert_eq!(r.families[0].family, Family::BuildInfo);
        assert_eq!(
            r.families[0].hash,
            content_hash(r.text(&r.families[0]).as_bytes())
        );
        assert_eq!(r.len_bytes(), r.text.len());
        assert_eq!(r.text.capacity(), r.text.len(), "one exact block");
        assert_eq!(
            std::str::from_utf8(r.get(Family::IssueInfo).unwrap()).unwrap(),
            "m365_service_issue_info{title=\"a \\\"b\\\"\\\\\\nc\"} 1\n"
        );
        assert_eq!(
            r.get(Family::BuildInfo).unwrap(),
            b"m365_exporter_build_info 1.5\n"
        );
    }

    #[test]
    fn integers_and_floats() {
        let mut s = String::new();
        for v in [
            0.0,
            -0.0,
            7.0,
            -42.0,
            1.8e9,
            999_999_999_999_999.0,
            1e15,
            0.25,
            f64::NAN,
        ] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(
            s,
            "0 0 7 -42 1800000000 999999999999999 1000000000000000 0.25 NaN "
        );
    }
}
