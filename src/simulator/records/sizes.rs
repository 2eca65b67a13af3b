//! How large the generated records are: the figures of BENCHMARKS.md
//! ("Audit catch-up") and the bounds the generator's test holds it to.

use super::{Meta, RecordGen};

/// Record sizes (bytes) of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeStats {
    pub count: usize,
    pub mean: f64,
    pub min: usize,
    pub p10: usize,
    pub p50: usize,
    pub p90: usize,
    pub max: usize,
}

impl SizeStats {
    pub fn of(mut sizes: Vec<usize>) -> SizeStats {
        sizes.sort_unstable();
        let n = sizes.len().max(1);
        let at = |q: f64| {
            sizes
                .get(((n - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(0)
        };
        SizeStats {
            count: sizes.len(),
            mean: sizes.iter().sum::<usize>() as f64 / n as f64,
            min: at(0.0),
            p10: at(0.1),
            p50: at(0.5),
            p90: at(0.9),
            max: at(1.0),
        }
    }

    /// Sizes of `n` records of one content type.
    pub fn sample(seed: u64, content_type: &str, n: usize) -> SizeStats {
        let mut g = RecordGen::new(seed);
        let mut s = String::new();
        let sizes = (0..n)
            .map(|_| {
                s.clear();
                g.record(
                    &mut s,
                    &Meta {
                        content_type,
                        tenant_id: "8f3c2a1e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
                        creation: 1_800_000_000,
                        workload: None,
                    },
                );
                s.len()
            })
            .collect();
        SizeStats::of(sizes)
    }
}

impl std::fmt::Display for SizeStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} records: mean {:.0} B, min {}, p10 {}, median {}, p90 {}, max {}",
            self.count, self.mean, self.min, self.p10, self.p50, self.p90, self.max
        )
    }
}
