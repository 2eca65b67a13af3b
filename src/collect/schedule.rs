//! Scheduling: one task per (tenant, collector) that refreshes it on its
//! interval and applies the state rules (`slot`), each under supervision.
//! A panic anywhere in a collector's loop is caught, logged once, counted
//! in `m365_collector_panics_total`, shown as `success 0` with the panic as
//! last error, and the loop is restarted after a backoff; other collectors
//! and tenants run in their own tasks and do not notice. A refresh that
//! outlives its deadline is abandoned and counts as failed (see `refresh`).
//! A tenant's audit feed is started here too ([`spawn_feed`]); it
//! supervises itself ([`crate::activity::feed`]).

use super::build::AuditFeed;
use super::slot::{
    failed_in_part, next_state, next_wait, warming_up, CollectorSlot, TenantRuntime,
};
use super::{CollectError, Collector, Outcome};
use crate::activity::feed;
use crate::metrics::Live;
use crate::task::AbortOnDrop;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Start one task per collector of `tenant`; each waits
/// `first_delay(interval)` before its first refresh, and all stop when
/// `stop` flips. Each collector's loop runs supervised (`supervise` below).
pub fn spawn(
    tenant: &TenantRuntime,
    stop: watch::Receiver<bool>,
    live: &Arc<Live>,
    first_delay: impl Fn(Duration) -> Duration,
) -> Vec<JoinHandle<()>> {
    tenant
        .slots
        .iter()
        .map(|slot| {
            let delay = first_delay(slot.collector.interval());
            let (tenant, slot, mut stop) = (tenant.name.clone(), slot.clone(), stop.clone());
            let live = live.clone();
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|v| *v) => return,
                    }
                }
                let (t, s, st) = (tenant.clone(), slot.clone(), stop.clone());
                supervise(tenant, slot, live, stop, move || {
                    run_loop(t.clone(), s.clone(), st.clone())
                })
                .await
            })
        })
        .collect()
}

/// Start a tenant's audit feed after `delay`, and stop it with its last
/// checkpoint when `stop` flips; the task ends when the feed has stopped.
pub fn spawn_feed(
    audit: AuditFeed,
    mut stop: watch::Receiver<bool>,
    delay: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
        let running = feed::spawn(audit.ctx, audit.status);
        let _ = stop.wait_for(|v| *v).await;
        running.stop().await;
    })
}

async fn run_loop(tenant: String, slot: Arc<CollectorSlot>, mut shutdown: watch::Receiver<bool>) {
    let kind = slot.collector.kind().as_str();
    let interval = slot.collector.interval();
    let mut failures = 0u32;
    let mut wake = slot.wake.clone();
    loop {
        // What the refresh is about to render counts as seen: only news
        // published after this wakes the loop early.
        if let Some(w) = wake.as_mut() {
            w.mark_unchanged();
        }
        let started = Instant::now();
        let result = refresh(slot.collector.as_ref()).await;
        failures = if result.is_err() { failures + 1 } else { 0 };
        let partial = result.as_ref().ok().and_then(|o| o.failing.clone());
        let warming = result.as_ref().is_ok_and(|o| o.warming_up);
        let took = started.elapsed();
        let prev = slot.state.load_full();
        let mut next = next_state(&prev, result, took, interval);
        if warming {
            warming_up(&prev, &mut next);
        } else if let Some(reason) = partial {
            failed_in_part(&prev, &mut next, reason);
        }
        match (&prev.last_error, &next.last_error) {
            (old, Some(new)) if old.as_ref() != Some(new) => {
                tracing::warn!(tenant = %tenant, collector = kind, error = %new, "refresh failed");
            }
            (Some(_), None) => {
                tracing::info!(tenant = %tenant, collector = kind, "refresh recovered")
            }
            _ => {}
        }
        // The first success with no failure logged before it.
        if next.success && prev.last_success_unix.is_none() && prev.last_error.is_none() {
            tracing::info!(tenant = %tenant, collector = kind, took_ms = took.as_millis() as u64, "first refresh done");
        }
        slot.state.store(Arc::new(next));
        // ±10% jitter spreads tenants that share an interval over time.
        let jitter = rand::rng().random_range(0.9..1.1);
        let wait = next_wait(interval, failures)
            .mul_f64(jitter)
            .saturating_sub(took);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed(&mut wake) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Resolves when the slot's pushing source has news; never for a
/// collector that polls, nor once the source is gone (its tenant stopping).
async fn changed(wake: &mut Option<super::slot::Wake>) {
    if let Some(w) = wake {
        if w.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// One refresh, abandoned (dropped) when it outlives the collector's deadline.
async fn refresh(collector: &dyn Collector) -> Result<Outcome, CollectError> {
    let deadline = collector.deadline();
    match tokio::time::timeout(deadline, collector.collect()).await {
        Ok(r) => r,
        Err(_) => Err(CollectError(format!(
            "refresh abandoned: still running after its deadline of {}",
            crate::config::format_duration(deadline)
        ))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into());
    msg.chars().take(200).collect()
}

/// Run `run` (one collector's refresh loop) under supervision until it
/// returns (shutdown) or `shutdown` flips.
async fn supervise<F, Fut>(
    tenant: String,
    slot: Arc<CollectorSlot>,
    live: Arc<Live>,
    mut shutdown: watch::Receiver<bool>,
    run: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let kind = slot.collector.kind().as_str();
    let interval = slot.collector.interval();
    let mut panics = 0u32;
    loop {
        let started = Instant::now();
        let mut task = AbortOnDrop(tokio::spawn(run()));
        let joined = tokio::select! {
            j = &mut task.0 => j,
            _ = shutdown.changed() => return,
        };
        let payload = match joined {
            Ok(()) => return,
            Err(e) if e.is_panic() => e.into_panic(),
            Err(_) => return, // cancelled: the runtime is going away
        };
        // A loop that ran well for a while before panicking starts over.
        if started.elapsed() > interval * 3 {
            panics = 0;
        }
        panics += 1;
        let message = panic_message(payload.as_ref());
        live.collector_panics
            .with_label_values(&[tenant.as_str(), kind])
            .inc();
        tracing::error!(tenant = %tenant, collector = kind, panic = %message, "collector panicked; restarting it");
        let prev = slot.state.load_full();
        slot.state.store(Arc::new(next_state(
            &prev,
            Err(CollectError(format!("collector panicked: {message}"))),
            Duration::ZERO,
            interval,
        )));
        tokio::select! {
            _ = tokio::time::sleep(next_wait(interval, panics)) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::CollectorKind;
    use super::*;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Panics on its first `panics` refreshes, hangs when `hang`, else succeeds.
    struct Test {
        kind: CollectorKind,
        panics: u32,
        hang: bool,
        runs: AtomicU32,
    }

    impl Collector for Test {
        fn kind(&self) -> CollectorKind {
            self.kind
        }
        fn interval(&self) -> Duration {
            Duration::from_millis(200)
        }
        fn deadline(&self) -> Duration {
            Duration::from_millis(300)
        }
        fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
            Box::pin(async move {
                let n = self.runs.fetch_add(1, Ordering::SeqCst);
                if n < self.panics {
                    panic!("injected test panic #{n}");
                }
                if self.hang {
                    std::future::pending::<()>().await;
                }
                Ok(Outcome::default())
            })
        }
    }

    fn slot(c: Test) -> Arc<CollectorSlot> {
        Arc::new(CollectorSlot::new(Arc::new(c)))
    }

    fn test(kind: CollectorKind, panics: u32, hang: bool) -> Test {
        Test {
            kind,
            panics,
            hang,
            runs: AtomicU32::new(0),
        }
    }

    /// Notes tokio's clock at each refresh.
    struct Clocked(std::sync::Mutex<Vec<tokio::time::Instant>>);

    impl Collector for Clocked {
        fn kind(&self) -> CollectorKind {
            CollectorKind::ServiceHealth
        }
        fn interval(&self) -> Duration {
            Duration::from_secs(3600)
        }
        fn collect(&self) -> BoxFuture<'_, Result<Outcome, CollectError>> {
            let mut at = self.0.lock().unwrap_or_else(|p| p.into_inner());
            at.push(tokio::time::Instant::now());
            Box::pin(async { Ok(Outcome::default()) })
        }
    }

    /// The first refresh waits for its turn (`first_delay`), on tokio's
    /// paused clock: not a bound on how fast the machine is, the order of
    /// events on a clock the test owns.
    #[tokio::test(start_paused = true)]
    async fn each_first_refresh_waits_for_its_turn() {
        let live = Arc::new(Live::new());
        let (stop, rx) = watch::channel(false);
        let began = tokio::time::Instant::now();
        let turn = |i: u32| Duration::from_secs(600) * i;
        let mut clocks = Vec::new();
        let mut handles = Vec::new();
        for i in 0..3 {
            let c = Arc::new(Clocked(Default::default()));
            let t = TenantRuntime {
                name: format!("t{i}"),
                slots: vec![Arc::new(CollectorSlot::new(c.clone()))],
            };
            handles.extend(spawn(&t, rx.clone(), &live, move |_| turn(i)));
            clocks.push(c);
        }
        // Past every turn, before any second refresh (an hour after the first).
        tokio::time::sleep(Duration::from_secs(1800)).await;
        for (i, c) in (0..).zip(&clocks) {
            let at = c.0.lock().unwrap().clone();
            assert_eq!(at.len(), 1, "t{i}: {at:?}");
            let after = at[0] - began;
            assert!(
                after >= turn(i),
                "t{i} refreshed {after:?} after start, before its turn at {:?}",
                turn(i)
            );
        }
        stop.send(true).unwrap();
        for h in handles {
            h.await.unwrap();
        }
    }

    async fn eventually(what: &str, f: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_collector_is_counted_and_restarted_others_unaffected() {
        let bad = slot(test(CollectorKind::ServiceHealth, 1, false));
        let good = slot(test(CollectorKind::ServiceHealth, 0, false));
        let live = Arc::new(Live::new());
        let (stop, rx) = watch::channel(false);
        let mut handles = Vec::new();
        for (name, slot) in [("bad", &bad), ("good", &good)] {
            let t = TenantRuntime {
                name: name.into(),
                slots: vec![slot.clone()],
            };
            handles.extend(spawn(&t, rx.clone(), &live, |_| Duration::ZERO));
        }
        let count = || {
            live.collector_panics
                .with_label_values(&["bad", "service_health"])
                .get()
        };
        eventually("panic counted", || count() == 1).await;
        // Right after the panic: failed, with the reason.
        let st = bad.state.load();
        if !st.success {
            assert!(st
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("injected test panic #0"));
        }
        // Restarted: the next refresh succeeds.
        eventually("restarted and succeeding", || bad.state.load().success).await;
        assert_eq!(count(), 1);
        assert!(good.state.load().success);
        assert_eq!(
            live.collector_panics
                .with_label_values(&["good", "service_health"])
                .get(),
            0
        );
        let mut text = Vec::new();
        live.encode(None, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                "m365_collector_panics_total{tenant=\"bad\",collector=\"service_health\"} 1"
            ),
            "{text}"
        );
        let _ = stop.send(true);
        for h in handles {
            let _ = h.await;
        }
    }

    #[tokio::test]
    async fn a_hanging_refresh_is_abandoned_and_counts_as_failed() {
        let s = slot(test(CollectorKind::Messages, 0, true));
        let r = refresh(s.collector.as_ref()).await;
        assert!(r.unwrap_err().0.contains("deadline"));
    }
}
