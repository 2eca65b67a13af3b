//! Record `Id`s seen in the last 7 days, for `m365_activity_records_duplicate_total`
//! and so that the sink writes each record once. Memory is bounded twice:
//! by age (ids older than Microsoft's retention cannot come back) and by
//! count ([`MAX_IDS`]; the oldest hours go first).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// About 21 MB at the cap (a 16-byte key plus a 4-byte hour per id).
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

/// Merge the fresh inserts into the sorted arrays once they number this
/// many, or a 32nd of the sorted part if that is more: the O(n) merge then
/// costs about 32 moves per insert, and the fresh map stays small (~1 MB at
/// the cap).
/// (Small in unit tests, so that they merge often.)
const FRESH_MIN: usize = if cfg!(test) { 8 } else { 4_096 };

/// The remembered ids, exact (a set, no probabilistic filter), in about 20
/// bytes per id: the bulk sorted by key in two parallel arrays (16-byte key,
/// 4-byte hour; no hashing slack, no doubling on growth), found through a
/// directory of key prefixes; the latest inserts in a small hash map, merged
/// into the arrays in batches. A `HashMap<u128, i32>` took 32 bytes per
/// entry at 2^21 buckets for 1 M ids (~66 MB) and twice that while resizing.
#[derive(Debug, Default, Clone)]
pub struct RecentIds {
    /// Sorted, distinct keys, and at the same index their hours (Unix hours
    /// of the records' CreationTime).
    keys: Vec<u128>,
    hours: Vec<i32>,
    /// `dir[p]` is the first index in `keys` whose top bits are ≥ `p`
    /// (`2^bits + 1` entries; empty for a small set: binary search over all).
    dir: Vec<u32>,
    /// 128 − bits of the directory.
    shift: u32,
    /// Inserted since the last merge (never also in `keys`). FxHash: the
    /// keys are UUID bits or FNV hashes already.
    fresh: FxHashMap<u128, i32>,
    /// hour → how many ids carry it (for age and count eviction).
    per_hour: BTreeMap<i32, usize>,
    /// The newest hour whose ids the count cap dropped (in this process).
    evicted_through: Option<i32>,
}

impl PartialEq for RecentIds {
    /// The same ids with the same hours, however they are laid out.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.per_hour == other.per_hour
            && self.entries().all(|(k, h)| other.hour(k) == Some(h))
    }
}

impl RecentIds {
    pub fn len(&self) -> usize {
        self.keys.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, k: u128) -> bool {
        self.fresh.contains_key(&k) || self.find(k).is_some()
    }

    /// The hour `k` is remembered under.
    pub fn hour(&self, k: u128) -> Option<i32> {
        match self.fresh.get(&k) {
            Some(h) => Some(*h),
            None => self.find(k).map(|i| self.hours[i]),
        }
    }

    /// Index of `k` in the sorted arrays.
    fn find(&self, k: u128) -> Option<usize> {
        let (lo, hi) = if self.dir.is_empty() {
            (0, self.keys.len())
        } else {
            let p = (k >> self.shift) as usize;
            (self.dir[p] as usize, self.dir[p + 1] as usize)
        };
        self.keys[lo..hi].binary_search(&k).ok().map(|i| lo + i)
    }

    /// The hour an id is kept under.
    pub fn hour_of(unix: i64) -> i32 {
        (unix.div_euclid(3_600)).clamp(0, i64::from(i32::MAX)) as i32
    }

    /// Every remembered id with its hour (for a full id-log generation).
    pub fn entries(&self) -> impl Iterator<Item = (u128, i32)> + '_ {
        self.keys
            .iter()
            .copied()
            .zip(self.hours.iter().copied())
            .chain(self.fresh.iter().map(|(k, h)| (*k, *h)))
    }

    /// Remember `k`; false when it was already known.
    pub fn insert(&mut self, k: u128, unix: i64) -> bool {
        self.insert_hour(k, Self::hour_of(unix))
    }

    /// [`Self::insert`] with the hour already computed (as the id log keeps it).
    pub fn insert_hour(&mut self, k: u128, hour: i32) -> bool {
        self.insert_capped(k, hour, MAX_IDS)
    }

    fn insert_capped(&mut self, k: u128, hour: i32, cap: usize) -> bool {
        if !self.insert_uncapped(k, hour) {
            return false;
        }
        if self.len() > cap {
            // Drop whole oldest hours down to 90 % of the cap, so the
            // O(n) sweep happens once per ~100k inserts, not per insert.
            self.evict_until(cap / 10 * 9);
        }
        true
    }

    fn insert_uncapped(&mut self, k: u128, hour: i32) -> bool {
        if self.contains(k) {
            return false;
        }
        self.fresh.insert(k, hour);
        *self.per_hour.entry(hour).or_default() += 1;
        if self.fresh.len() >= FRESH_MIN.max(self.keys.len() / 32) {
            self.merge_fresh();
        }
        true
    }

    /// Move the fresh inserts into the sorted arrays (in place, from the
    /// back: no second copy of the arrays).
    fn merge_fresh(&mut self) {
        let mut add: Vec<(u128, i32)> = self.fresh.drain().collect();
        add.sort_unstable_by_key(|e| e.0);
        let n = self.keys.len();
        let total = n + add.len();
        if self.keys.capacity() < total {
            // Grow by an eighth at least, not by doubling.
            let more = add.len().max(n / 8);
            self.keys.reserve_exact(more);
            self.hours.reserve_exact(more);
        }
        self.keys.resize(total, 0);
        self.hours.resize(total, 0);
        let (mut i, mut w) = (n, total);
        for (k, h) in add.into_iter().rev() {
            while i > 0 && self.keys[i - 1] > k {
                i -= 1;
                w -= 1;
                self.keys[w] = self.keys[i];
                self.hours[w] = self.hours[i];
            }
            w -= 1;
            self.keys[w] = k;
            self.hours[w] = h;
        }
        self.rebuild_dir();
    }

    /// About four to eight keys per directory slot (GUID keys use the
    /// lower half of the slots: their top bit is clear).
    fn rebuild_dir(&mut self) {
        let n = self.keys.len();
        self.dir.clear();
        if n < 256 {
            self.dir.shrink_to_fit();
            return;
        }
        let bits = (usize::BITS - 1 - n.leading_zeros() - 2).min(20);
        self.shift = 128 - bits;
        let slots = 1usize << bits;
        self.dir.reserve_exact(slots + 1);
        let mut i = 0;
        for p in 0..=slots {
            while i < n && ((self.keys[i] >> self.shift) as usize) < p {
                i += 1;
            }
            self.dir.push(i as u32);
        }
    }

    /// Keep only the ids whose hour passes `keep`.
    fn retain_hours(&mut self, keep: impl Fn(i32) -> bool) {
        self.fresh.retain(|_, h| keep(*h));
        let mut w = 0;
        for i in 0..self.keys.len() {
            if keep(self.hours[i]) {
                self.keys[w] = self.keys[i];
                self.hours[w] = self.hours[i];
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.hours.truncate(w);
        if self.keys.capacity() > 2 * w + FRESH_MIN {
            // Give the memory back after a large prune.
            self.keys.shrink_to_fit();
            self.hours.shrink_to_fit();
        }
        self.rebuild_dir();
    }

    /// Forget ids older than the retention window.
    pub fn prune(&mut self, now: i64) {
        let cutoff = (now.div_euclid(3_600) - KEEP_HOURS).max(0) as i32;
        if self.per_hour.keys().next().is_some_and(|h| *h < cutoff) {
            self.per_hour = self.per_hour.split_off(&cutoff);
            self.retain_hours(|h| h >= cutoff);
        }
    }

    fn evict_until(&mut self, target: usize) {
        let mut remaining = self.len();
        let mut cutoff = None;
        while remaining > target {
            let Some((h, n)) = self.per_hour.pop_first() else {
                break;
            };
            remaining -= n;
            cutoff = Some(h);
        }
        if let Some(c) = cutoff {
            self.retain_hours(|h| h > c);
            self.evicted_through = Some(self.evicted_through.map_or(c, |e| e.max(c)));
        }
    }

    /// The oldest hour from which this set holds every id it was given:
    /// before it, the count cap may have dropped ids (None: nothing was
    /// dropped but by age). A set at the cap's eviction target is not
    /// trusted before its oldest hour: an earlier process may have evicted.
    /// The reconciler compares only windows from here on (a dropped id
    /// would read as a missing record).
    pub fn complete_from_hour(&self) -> Option<i32> {
        match self.evicted_through {
            Some(h) => Some(h.saturating_add(1)),
            None if self.len() >= MAX_IDS / 10 * 9 => self.per_hour.keys().next().copied(),
            None => None,
        }
    }
}

/// Persisted as `{hour: "hex32hex32…"}`: ~33 bytes per id instead of a
/// JSON array of quoted GUIDs.
impl Serialize for RecentIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut by_hour: BTreeMap<i32, String> = BTreeMap::new();
        for (k, h) in self.entries() {
            let buf = by_hour.entry(h).or_default();
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
                // Version-1 states were written under the cap already.
                out.insert_uncapped(k, hour);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(r.complete_from_hour(), None);
        r.evict_until(5);
        assert_eq!(r.len(), 5);
        assert!(!r.contains(4) && r.contains(5));
        assert_eq!(r.complete_from_hour(), Some(5), "hours 0-4 were dropped");
        // Pruning by age is not a loss.
        let mut r = RecentIds::default();
        r.insert(1, 0);
        r.insert(2, 20 * 86_400);
        r.prune(20 * 86_400);
        assert_eq!((r.len(), r.complete_from_hour()), (1, None));
    }

    /// The set as it was before the compact layout (a `HashMap`), with the
    /// cap as a parameter: the reference the new layout must agree with.
    #[derive(Default)]
    struct Model {
        ids: HashMap<u128, i32>,
        per_hour: BTreeMap<i32, usize>,
    }

    impl Model {
        fn insert_hour(&mut self, k: u128, hour: i32, cap: usize) -> bool {
            if self.ids.contains_key(&k) {
                return false;
            }
            self.ids.insert(k, hour);
            *self.per_hour.entry(hour).or_default() += 1;
            if self.ids.len() > cap {
                self.evict_until(cap / 10 * 9);
            }
            true
        }

        fn prune(&mut self, now: i64) {
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

    fn same(r: &RecentIds, m: &Model) {
        assert_eq!(r.len(), m.ids.len());
        assert_eq!(r.per_hour, m.per_hour);
        for (k, h) in &m.ids {
            assert_eq!(r.hour(*k), Some(*h), "{k:x}");
        }
        let mut seen: Vec<u128> = r.entries().map(|e| e.0).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), r.len(), "entries are distinct");
    }

    /// Random inserts (new ids, repeats, GUID-like and hashed keys), lookups,
    /// prunes and count evictions give the same answers as the HashMap.
    #[test]
    fn equivalent_to_a_hashmap_model() {
        use rand::{Rng, SeedableRng};
        for seed in 0..6u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let cap = [50, 700, 3_000, 20_000, 1_000_000, 5_000][seed as usize];
            let mut r = RecentIds::default();
            let mut m = Model::default();
            let mut known: Vec<u128> = Vec::new();
            let mut now: i64 = 1_800_000_000;
            for step in 0..40_000 {
                match rng.random_range(0..100) {
                    0..=59 => {
                        // A new id: a GUID's key or a hashed one; sometimes
                        // clustered keys (sequential GUIDs).
                        let k = match rng.random_range(0..4) {
                            0 => key(&format!("not-a-guid-{}", rng.random::<u64>())),
                            1 => (0x4c6f_0b7e_u128 << 96) | step as u128,
                            _ => rng.random::<u128>() & !(1u128 << 127),
                        };
                        let when = now - rng.random_range(0..9 * 86_400);
                        let h = RecentIds::hour_of(when);
                        assert_eq!(r.insert_capped(k, h, cap), m.insert_hour(k, h, cap));
                        known.push(k);
                    }
                    60..=84 if !known.is_empty() => {
                        // A repeat (or an evicted id coming back).
                        let k = known[rng.random_range(0..known.len())];
                        let when = now - rng.random_range(0..86_400);
                        let h = RecentIds::hour_of(when);
                        assert_eq!(r.contains(k), m.ids.contains_key(&k));
                        assert_eq!(r.insert_capped(k, h, cap), m.insert_hour(k, h, cap));
                    }
                    85..=98 => {
                        let k = if known.is_empty() || rng.random_bool(0.5) {
                            rng.random::<u128>()
                        } else {
                            known[rng.random_range(0..known.len())]
                        };
                        assert_eq!(r.contains(k), m.ids.contains_key(&k));
                        assert_eq!(r.hour(k), m.ids.get(&k).copied());
                    }
                    _ => {
                        now += rng.random_range(0..12 * 3_600);
                        r.prune(now);
                        m.prune(now);
                    }
                }
                if step % 4_999 == 0 {
                    same(&r, &m);
                }
            }
            same(&r, &m);
        }
    }
}
