//! Content listed but not yet fetched, and the content ids already handled.
//!
//! Any source may [`Backlog::offer`] content (the lister's listings and the
//! Management API's webhook notifications): the same `contentId` is
//! accepted once, so re-listing an overlap or hearing of a blob twice costs
//! nothing. A blob leaves the pending set only by being fetched or by
//! expiring; both are remembered until Microsoft could no longer list it.

use super::Content;
use super::RETENTION;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backlog {
    /// contentId → content, not yet fetched.
    pending: BTreeMap<String, Content>,
    /// contentId → contentCreated of content fetched or expired.
    handled: HashMap<String, i64>,
}

/// Per content type: how many blobs wait, and the oldest one's contentCreated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub blobs: usize,
    pub oldest_created: Option<i64>,
}

impl Backlog {
    /// Add content from any source; false when its id is already known.
    pub fn offer(&mut self, c: Content) -> bool {
        if self.pending.contains_key(&c.content_id) || self.handled.contains_key(&c.content_id) {
            return false;
        }
        self.pending.insert(c.content_id.clone(), c);
        true
    }

    pub fn is_known(&self, content_id: &str) -> bool {
        self.pending.contains_key(content_id) || self.handled.contains_key(content_id)
    }

    /// Pending content, oldest contentCreated first (the lag's cause first).
    pub fn pending(&self) -> Vec<Content> {
        let mut v: Vec<Content> = self.pending.values().cloned().collect();
        v.sort_by(|a, b| (a.created, &a.content_id).cmp(&(b.created, &b.content_id)));
        v
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Mark fetched (or given up as expired); returns the content if it was pending.
    pub fn complete(&mut self, content_id: &str) -> Option<Content> {
        let c = self.pending.remove(content_id)?;
        self.handled.insert(c.content_id.clone(), c.created);
        Some(c)
    }

    /// Remove and return pending content past its `contentExpiration`.
    pub fn take_expired(&mut self, now: i64) -> Vec<Content> {
        let ids: Vec<String> = self
            .pending
            .values()
            .filter(|c| c.expiration <= now)
            .map(|c| c.content_id.clone())
            .collect();
        ids.iter().filter_map(|id| self.complete(id)).collect()
    }

    /// Forget handled ids Microsoft can no longer list.
    pub fn prune(&mut self, now: i64) {
        let cutoff = now - RETENTION.as_secs() as i64 - 86_400;
        self.handled.retain(|_, created| *created >= cutoff);
    }

    /// contentCreated of the oldest pending blob, of any type.
    pub fn oldest_pending(&self) -> Option<i64> {
        self.pending.values().map(|c| c.created).min()
    }

    pub fn waiting(&self, content_type: &str) -> Waiting {
        let mut w = Waiting::default();
        for c in self
            .pending
            .values()
            .filter(|c| c.content_type == content_type)
        {
            w.blobs += 1;
            w.oldest_created = Some(w.oldest_created.map_or(c.created, |o| o.min(c.created)));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, ct: &str, created: i64) -> Content {
        Content {
            content_type: ct.into(),
            content_id: id.into(),
            content_uri: format!("http://x/{id}"),
            created,
            expiration: created + 7 * 86_400,
        }
    }

    #[test]
    fn dedup_by_content_id_from_any_source() {
        let mut b = Backlog::default();
        assert!(b.offer(c("a", "Audit.Exchange", 20)));
        assert!(!b.offer(c("a", "Audit.Exchange", 20)), "listed twice");
        assert!(b.offer(c("b", "Audit.Exchange", 10)));
        assert!(b.offer(c("z", "DLP.All", 5)));
        assert_eq!(
            b.pending()
                .iter()
                .map(|c| c.content_id.as_str())
                .collect::<Vec<_>>(),
            ["z", "b", "a"]
        );
        assert_eq!(
            b.waiting("Audit.Exchange"),
            Waiting {
                blobs: 2,
                oldest_created: Some(10)
            }
        );
        assert!(b.complete("b").is_some());
        assert!(b.complete("b").is_none());
        assert!(
            !b.offer(c("b", "Audit.Exchange", 10)),
            "fetched, then re-listed"
        );
        assert_eq!(b.waiting("Audit.Exchange").oldest_created, Some(20));
        assert_eq!(b.waiting("Audit.General"), Waiting::default());
        assert_eq!(b.oldest_pending(), Some(5));
    }

    #[test]
    fn expiry_and_prune() {
        let mut b = Backlog::default();
        let mut old = c("old", "Audit.General", 0);
        old.expiration = 100;
        b.offer(old);
        b.offer(c("new", "Audit.General", 50));
        let gone = b.take_expired(100);
        assert_eq!(gone.len(), 1);
        assert_eq!(b.pending_len(), 1);
        assert!(
            b.is_known("old"),
            "expired content is not re-added by a re-list"
        );
        b.prune(10 * 86_400);
        assert!(!b.is_known("old"));
        assert!(b.is_known("new"), "pending content is never pruned");
    }
}
