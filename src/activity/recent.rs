//! Record `Id`s seen in the last 7 days, for `m365_activity_records_duplicate_total`
//! and so that the sink writes each record once. Memory is bounded twice:
//! by age (ids older than Microsoft's retention cannot come back) and by
//! count ([`MAX_IDS`]; the oldest hours go first).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};

/// About 30–40 MB at the cap (a 16-byte key plus an hour per id).
pub const MAX_IDS: usize = 1_000_000;
/// Keep ids this many hours: 7 days of retention plus a day of slack for
/// records whose blobs arrive late.
const KEEP_HOURS: i64 = 8 * 24;

/// A compact key: the GUID's 128 bits, or a 64-bit FNV-1a hash (flagged in
/// the top bit) for an id that is not a GUID. Stable across versions, since
/// keys are persisted in the state file.
pub fn key(id: &str) -> u128 {
    if let Ok(u) = uuid::Uuid::try_parse(id) {
        return u.as_u128() & !(1u128 << 127);
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (1u128 << 127) | u128::from(h)
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecentIds {
    /// id key → hour (Unix hours) of its record's CreationTime.
    ids: HashMap<u128, i32>,
    /// hour → how many ids carry it (for age and count eviction).
    per_hour: BTreeMap<i32, usize>,
}

impl RecentIds {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, k: u128) -> bool {
        self.ids.contains_key(&k)
    }

    /// The hour an id is kept under.
    pub fn hour_of(unix: i64) -> i32 {
        (unix.div_euclid(3_600)).clamp(0, i64::from(i32::MAX)) as i32
    }

    /// Every remembered id with its hour (for a full id-log generation).
    pub fn entries(&self) -> impl Iterator<Item = (u128, i32)> + '_ {
        self.ids.iter().map(|(k, h)| (*k, *h))
    }

    /// Remember `k`; false when it was already known.
    pub fn insert(&mut self, k: u128, unix: i64) -> bool {
        self.insert_hour(k, Self::hour_of(unix))
    }

    /// [`Self::insert`] with the hour already computed (as the id log keeps it).
    pub fn insert_hour(&mut self, k: u128, hour: i32) -> bool {
        if self.ids.contains_key(&k) {
            return false;
        }
        self.ids.insert(k, hour);
        *self.per_hour.entry(hour).or_default() += 1;
        if self.ids.len() > MAX_IDS {
            // Drop whole oldest hours down to 90 % of the cap, so the
            // O(n) sweep happens once per ~100k inserts, not per insert.
            self.evict_until(MAX_IDS / 10 * 9);
        }
        true
    }

    /// Forget ids older than the retention window.
    pub fn prune(&mut self, now: i64) {
        let cutoff = (now.div_euclid(3_600) - KEEP_HOURS).max(0) as i32;
        if self.per_hour.keys().next().is_some_and(|h| *h < cutoff) {
            self.per_hour = self.per_hour.split_off(&cutoff);
            self.ids.retain(|_, h| *h >= cutoff);
        }
    }

    fn evict_until(&mut self, target: usize) {
        let mut remaining = self.ids.len();
        let mut cutoff = None;
        while remaining > target {
            let Some((h, n)) = self.per_hour.pop_first() else {
                break;
            };
            remaining -= n;
            cutoff = Some(h);
        }
        if let Some(c) = cutoff {
            self.ids.retain(|_, h| *h > c);
        }
    }
}

/// Persisted as `{hour: "hex32hex32…"}`: ~33 bytes per id instead of a
/// JSON array of quoted GUIDs.
impl Serialize for RecentIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut by_hour: BTreeMap<i32, String> = BTreeMap::new();
        for (k, h) in &self.ids {
            let buf = by_hour.entry(*h).or_default();
            buf.push_str(&format!("{k:032x}"));
        }
        by_hour.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RecentIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let by_hour: BTreeMap<i32, String> = BTreeMap::deserialize(d)?;
        let mut out = RecentIds::default();
        for (hour, hex) in by_hour {
            if hex.len() % 32 != 0 || !hex.is_ascii() {
                return Err(serde::de::Error::custom("recent ids: bad hex length"));
            }
            for chunk in hex.as_bytes().chunks(32) {
                let text = std::str::from_utf8(chunk).map_err(serde::de::Error::custom)?;
                let k = u128::from_str_radix(text, 16).map_err(serde::de::Error::custom)?;
                if out.ids.insert(k, hour).is_none() {
                    *out.per_hour.entry(hour).or_default() += 1;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_distinguish_guid_and_other_ids() {
        let g = "4c6f0b7e-0000-4000-8000-000000000001";
        assert_eq!(key(g), key(&g.to_uppercase()));
        assert_ne!(key("abc"), key("abd"));
        assert_eq!(key("abc") >> 127, 1);
        assert_eq!(key(g) >> 127, 0);
    }

    #[test]
    fn insert_prune_roundtrip() {
        let mut r = RecentIds::default();
        let now = 1_800_000_000;
        assert!(r.insert(key("a"), now));
        assert!(!r.insert(key("a"), now - 10));
        assert!(r.insert(key("old"), now - 9 * 86_400));
        assert_eq!(r.len(), 2);
        let json = serde_json::to_string(&r).unwrap();
        let back: RecentIds = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        r.prune(now);
        assert_eq!(r.len(), 1);
        assert!(r.contains(key("a")) && !r.contains(key("old")));
        assert!(serde_json::from_str::<RecentIds>(r#"{"1":"zz"}"#).is_err());
    }

    #[test]
    fn count_cap_evicts_oldest_hours() {
        let mut r = RecentIds::default();
        r.evict_until(0);
        for i in 0..10u128 {
            r.insert(i, i as i64 * 3_600);
        }
        r.evict_until(5);
        assert_eq!(r.len(), 5);
        assert!(!r.contains(4) && r.contains(5));
    }
}
