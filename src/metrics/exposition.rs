//! One scrape body, plain or gzip, assembled from parts that were mostly
//! rendered (and compressed) before the scrape.
//!
//! gzip without compressing at scrape time: a gzip file may hold several
//! members one after another, and a reader decompresses them into the
//! concatenation of their contents (RFC 1952 §2.2; Go's `compress/gzip`,
//! which Prometheus uses, reads multistream by default). So every snapshot
//! family is compressed once, when its collector refreshes, and a scrape only
//! copies those members between the (also pre-compressed) HELP/TYPE headers.
//! The few lines that change between refreshes (collector status, ages, the
//! live counters) are gathered per family and compressed at scrape time,
//! at the fastest level.

use super::text::{write_header, Family};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write as _;
use std::sync::OnceLock;

/// The body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// gzip when the `Accept-Encoding` header offers it (`gzip` or
    /// `x-gzip`, with a q-value other than 0); identity otherwise.
    pub fn negotiate(accept_encoding: Option<&str>) -> Self {
        let offered = accept_encoding.is_some_and(|h| {
            h.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let name = parts.next().unwrap_or("");
                let q_zero = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip"))
                    && !q_zero
            })
        });
        if offered {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

/// `data` as one complete gzip member.
pub fn gzip_member(data: &[u8], level: Compression) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 32), level);
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Level for members compressed once per refresh: they are read by every
/// scrape until the next refresh, so spend the CPU once.
pub const REFRESH_LEVEL: Compression = Compression::new(9);

/// HELP/TYPE lines of every family, plain and as a gzip member.
fn headers() -> &'static [(Vec<u8>, Vec<u8>)] {
    static H: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    H.get_or_init(|| {
        Family::ALL
            .iter()
            .map(|&f| {
                let mut plain = Vec::new();
                write_header(&mut plain, f);
                let gz = gzip_member(&plain, REFRESH_LEVEL);
                (plain, gz)
            })
            .collect()
    })
}

/// Builds a scrape body family by family. A family's header is written
/// only if one of its samples follows.
pub struct Exposition {
    encoding: Encoding,
    out: Vec<u8>,
    /// gzip: text of the current family not compressed yet (sample order
    /// within a family is free, so it is written after the family's members).
    pending: Vec<u8>,
    header: Option<Family>,
}

impl Exposition {
    pub fn new(encoding: Encoding, capacity: usize) -> Self {
        Exposition {
            encoding,
            out: Vec::with_capacity(capacity),
            pending: Vec::new(),
            header: None,
        }
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Start the samples of `fam` (ends the previous family).
    pub fn family(&mut self, fam: Family) {
        self.end_family();
        self.header = Some(fam);
    }

    /// End the current family; what follows carries its own headers.
    pub fn end_family(&mut self) {
        self.flush_pending();
        self.header = None;
    }

    fn open(&mut self) {
        if let Some(fam) = self.header.take() {
            let (plain, gz) = &headers()[fam as usize];
            match self.encoding {
                Encoding::Identity => self.out.extend_from_slice(plain),
                Encoding::Gzip => self.out.extend_from_slice(gz),
            }
        }
    }

    /// Sample lines rendered at scrape time.
    pub fn text(&mut self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        self.open();
        match self.encoding {
            Encoding::Identity => self.out.extend_from_slice(lines),
            Encoding::Gzip => self.pending.extend_from_slice(lines),
        }
    }

    /// Sample lines rendered before the scrape, with their gzip member.
    pub fn member(&mut self, plain: &[u8], gz: &[u8]) {
        if plain.is_empty() {
            return;
        }
        self.open();
        match self.encoding {
            Encoding::Identity => self.out.extend_from_slice(plain),
            Encoding::Gzip => self.out.extend_from_slice(gz),
        }
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let mut enc = GzEncoder::new(&mut self.out, Compression::fast());
            let _ = enc.write_all(&self.pending);
            let _ = enc.finish();
            self.pending.clear();
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.end_family();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::MultiGzDecoder;
    use std::io::Read as _;

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        MultiGzDecoder::new(b).read_to_string(&mut s).unwrap();
        s
    }

    fn build(enc: Encoding) -> Vec<u8> {
        let a = b"m365_service_info{tenant=\"a\"} 1\n";
        let b = b"m365_service_info{tenant=\"b\"} 1\n";
        let mut x = Exposition::new(enc, 0);
        x.family(Family::BuildInfo);
        x.text(b"m365_exporter_build_info 1\n");
        x.family(Family::CollectorSuccess); // no samples: no header
        x.family(Family::ServiceInfo);
        x.text(b"m365_service_info{tenant=\"c\"} 1\n");
        x.member(a, &gzip_member(a, REFRESH_LEVEL));
        x.member(b, &gzip_member(b, REFRESH_LEVEL));
        x.member(b"", b"");
        x.end_family();
        x.text(b"# HELP live x\n# TYPE live counter\nlive 2\n");
        x.finish()
    }

    #[test]
    fn gzip_members_decode_to_the_plain_body_up_to_order_within_a_family() {
        let plain = String::from_utf8(build(Encoding::Identity)).unwrap();
        let gz = build(Encoding::Gzip);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        let unzipped = gunzip(&gz);
        assert!(!plain.contains("m365_collector_success"));
        let sorted = |s: &str| {
            let mut v: Vec<&str> = s.lines().collect();
            v.sort();
            v.join("\n")
        };
        assert_eq!(sorted(&plain), sorted(&unzipped));
        // Headers come first in their group, and the group stays together.
        let lines: Vec<&str> = unzipped.lines().collect();
        let at = |p: &str| lines.iter().position(|l| l.starts_with(p)).unwrap();
        assert!(at("# TYPE m365_service_info") < at("m365_service_info{tenant=\"a\""));
        assert!(at("m365_service_info{tenant=\"c\"") < at("# HELP live"));
    }

    #[test]
    fn negotiates_gzip_only_when_offered() {
        for (h, want) in [
            (None, Encoding::Identity),
            (Some("gzip"), Encoding::Gzip),
            (Some("identity, GZIP;q=0.5"), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("gzip;q=0"), Encoding::Identity),
            (Some("deflate, br"), Encoding::Identity),
            (Some(""), Encoding::Identity),
        ] {
            assert_eq!(Encoding::negotiate(h), want, "{h:?}");
        }
    }
}
