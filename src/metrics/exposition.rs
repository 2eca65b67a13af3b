//! Content negotiation, and gzip of a small body in one go.
//!
//! `/metrics` in gzip is spliced from cached segments ([`super::gzip`]);
//! `/probe` (one tenant, a few kilobytes) is compressed whole per request,
//! as one stream at the fastest level of zlib-rs.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write as _;

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

    /// `body` in this encoding.
    pub fn encode(self, body: Vec<u8>) -> Vec<u8> {
        match self {
            Encoding::Identity => body,
            Encoding::Gzip => gzip(&body, Compression::fast()),
        }
    }
}

/// `data` as one gzip stream.
pub fn gzip(data: &[u8], level: Compression) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 8 + 64), level);
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read as _;

    #[test]
    fn gzip_round_trips() {
        let body = b"# HELP a x\n# TYPE a gauge\na{tenant=\"t\"} 1\n".repeat(100);
        let gz = Encoding::Gzip.encode(body.clone());
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        assert!(gz.len() * 10 < body.len());
        let mut back = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, body);
        assert_eq!(Encoding::Identity.encode(body.clone()), body);
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
