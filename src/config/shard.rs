//! `--tenants.shard=i/n`: keep the tenants whose stable hash falls in shard
//! `i` of `n`, so `n` replicas split a tenant list with no coordination.
//!
//! The hash is 64-bit FNV-1a of the tenant name's UTF-8 bytes (offset basis
//! 0xcbf29ce484222325, prime 0x100000001b3), taken modulo `n`. It is fixed:
//! the same name lands in the same shard on every replica, build and version
//! (never std's randomly seeded hasher).

use super::file::Config;
use std::hash::Hasher;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// FNV-1a 64 of `name`.
pub fn stable_hash(name: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(name.as_bytes());
    h.finish()
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not i/n with 0 <= i < n (e.g. 0/3)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    pub fn keeps(&self, tenant: &str) -> bool {
        stable_hash(tenant) % self.count == self.index
    }

    /// `config` with only this shard's tenants (possibly none).
    pub fn filter(&self, mut config: Config) -> Config {
        config.tenants.retain(|t| self.keeps(&t.name));
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Published FNV-1a 64 test vectors: "" and "a".
        assert_eq!(stable_hash(""), 0xcbf29ce484222325);
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_a_thousand_tenants_exactly() {
        let names: Vec<String> = (0..1000).map(|i| format!("tenant-{i:04}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for n in &names {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].keeps(n)).collect();
            assert_eq!(owners.len(), 1, "{n} in exactly one shard");
            sizes[owners[0]] += 1;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        // Balanced within a few percent of 333.
        assert!(sizes.iter().all(|&s| (290..=376).contains(&s)), "{sizes:?}");
    }
}
