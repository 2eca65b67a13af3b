//! Backlog → blob GETs: oldest first, `concurrency` at a time, the bytes of
//! blobs held at once (downloaded, not yet written) capped by the in-flight
//! budget (`activity.max_inflight_bytes`), a poll's downloads bounded in
//! time so the status is refreshed during a long catch-up, and blobs that
//! never parse counted towards quarantine. It owns what is in flight and
//! the failed parses per blob; each batch tallies how its downloads went
//! (the feed-wide `download` problem).

use super::client::ManagementClient;
use super::problem::Problem;
use super::Content;
use crate::api::ApiError;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A poll stops starting downloads after its interval (at least this long).
pub const MIN_DOWNLOAD_WINDOW: Duration = Duration::from_secs(5);
/// A blob that fails to parse this many times is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;

pub type Fetched = Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError>;

pub struct Downloader {
    client: Arc<ManagementClient>,
    concurrency: usize,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    /// contentId → failed parses so far.
    parse_failures: HashMap<String, u32>,
}

impl Downloader {
    pub fn new(client: Arc<ManagementClient>, concurrency: usize, budget_bytes: usize) -> Self {
        Downloader {
            client,
            concurrency: concurrency.max(1),
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            parse_failures: HashMap::new(),
        }
    }

    /// Download `queue` (oldest first); starts stop at `deadline`, but one
    /// full batch always starts, so a poll whose listing alone outlasted the
    /// interval still drains.
    pub fn batch(&self, queue: Vec<Content>, deadline: Instant) -> Batch {
        Batch {
            client: self.client.clone(),
            budget: self.budget.clone(),
            budget_bytes: self.budget_bytes,
            concurrency: self.concurrency,
            deadline,
            queue: queue.into_iter(),
            launched: 0,
            inflight: FuturesUnordered::new(),
            fetched: 0,
            failed: 0,
            last_error: None,
        }
    }

    /// A blob did not parse; true when it is time to quarantine it.
    pub fn parse_failed(&mut self, content_id: &str) -> bool {
        let n = self
            .parse_failures
            .entry(content_id.to_string())
            .or_default();
        *n += 1;
        if *n >= QUARANTINE_AFTER {
            self.parse_failures.remove(content_id);
            return true;
        }
        false
    }

    pub fn parsed(&mut self, content_id: &str) {
        self.parse_failures.remove(content_id);
    }
}

pub struct Batch {
    client: Arc<ManagementClient>,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    concurrency: usize,
    deadline: Instant,
    queue: std::vec::IntoIter<Content>,
    launched: usize,
    inflight: FuturesUnordered<BoxFuture<'static, (Content, Fetched)>>,
    fetched: usize,
    failed: usize,
    last_error: Option<String>,
}

impl Batch {
    /// The next finished download, or None when the batch is done.
    pub async fn next(&mut self) -> Option<(Content, Fetched)> {
        while self.inflight.len() < self.concurrency
            && (Instant::now() < self.deadline || self.launched < self.concurrency)
        {
            let Some(c) = self.queue.next() else { break };
            self.launched += 1;
            let (client, budget, bytes) =
                (self.client.clone(), self.budget.clone(), self.budget_bytes);
            self.inflight.push(Box::pin(async move {
                let r = client.blob(&c.content_uri, &budget, bytes).await;
                (c, r)
            }));
        }
        self.inflight.next().await
    }

    /// A blob of this batch was downloaded and applied.
    pub fn applied(&mut self) {
        self.fetched += 1;
    }

    /// A blob of this batch stays in the backlog, for this reason.
    pub fn failed(&mut self, why: String) {
        self.failed += 1;
        self.last_error = Some(why);
    }

    /// Some failures among successes are throttling weather; none
    /// succeeding means downloads are stuck.
    pub fn problem(&self) -> Option<Problem> {
        match &self.last_error {
            Some(e) if self.fetched == 0 && self.failed > 0 => {
                Some(Problem::Failed(format!("blob downloads failing ({e})")))
            }
            _ => None,
        }
    }
}
