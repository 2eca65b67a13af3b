//! When a token request is tried again: [`TokenRetry`], one policy per kind
//! of token endpoint, as a pure function of the failure, the attempt and
//! the time since the first (so it is tested without waiting).
//!
//! Managed identity follows azure-identity: Azure IMDS answers 404 and 410
//! while the host is being updated (a monthly event of 2-3 minutes), and
//! 410 is retried "for at least 70 seconds total duration as required by
//! Azure IMDS documentation" (Azure.Identity CHANGELOG, PR 50725); 404,
//! 408, 429 and 5xx with exponential backoff; 400/401/403 not at all. The
//! App Service / Container Apps endpoint retries 429 and 5xx (its 404 is no
//! host update). See docs/credentials.md.

use rand::Rng;
use std::time::Duration;

/// A 410 from IMDS is retried until this long after the first attempt.
pub const IMDS_GONE_FOR: Duration = Duration::from_secs(70);
/// First wait after a 410 (azure-identity's larger base: 3, 6, 12, 24,
/// 48 s add up to more than 70 s even with jitter).
pub const IMDS_GONE_BASE: Duration = Duration::from_secs(3);
/// First wait after another transient answer (azure-identity: 0.8 s).
pub const MI_BASE: Duration = Duration::from_millis(800);
/// Retries of transient managed-identity answers other than IMDS's 410.
pub const MI_RETRIES: u32 = 5;
/// No single wait is longer.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRetry {
    /// Entra ID's token endpoint (secret, certificate, federated token):
    /// transport errors, 429 and 5xx, three attempts.
    Standard,
    /// Azure IMDS (`169.254.169.254`).
    Imds,
    /// App Service / Container Apps (`IDENTITY_ENDPOINT`).
    AppService,
}

impl TokenRetry {
    /// After failed attempt `attempt` (1-based) with HTTP `status` (None: no
    /// answer), the `gone`-th 410 so far (0: this was no 410), `elapsed`
    /// after the first attempt began: how long to wait before the next, or
    /// None to give up.
    pub fn next(
        self,
        status: Option<u16>,
        attempt: u32,
        gone: u32,
        elapsed: Duration,
    ) -> Option<Duration> {
        let transient = matches!(status, None | Some(429) | Some(500..=599));
        match self {
            TokenRetry::Standard => {
                (transient && attempt < 3).then(|| Duration::from_millis(500 * u64::from(attempt)))
            }
            TokenRetry::Imds => match status {
                Some(410) => (elapsed < IMDS_GONE_FOR && attempt < 12)
                    .then(|| jitter(exponential(IMDS_GONE_BASE, gone))),
                Some(404 | 408) => {
                    (attempt <= MI_RETRIES).then(|| jitter(exponential(MI_BASE, attempt)))
                }
                _ if transient => {
                    (attempt <= MI_RETRIES).then(|| jitter(exponential(MI_BASE, attempt)))
                }
                _ => None,
            },
            TokenRetry::AppService => {
                (transient && attempt <= MI_RETRIES).then(|| jitter(exponential(MI_BASE, attempt)))
            }
        }
    }
}

/// `base`·2^(attempt−1), at most [`MAX_WAIT`].
fn exponential(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_WAIT)
}

/// `d` × a factor from 0.8 to 1.2 (retries of many hosts do not align).
fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..=1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays answers through the policy with the shortest jitter: the
    /// attempts made and the time spent retrying.
    fn replay(p: TokenRetry, answers: impl Fn(u32) -> Option<u16>) -> (u32, Duration) {
        let mut elapsed = Duration::ZERO;
        let (mut attempt, mut gone) = (1, 0);
        loop {
            let status = answers(attempt);
            gone += u32::from(status == Some(410));
            let Some(wait) = p.next(status, attempt, gone, elapsed) else {
                break;
            };
            assert!(wait <= MAX_WAIT.mul_f64(1.2));
            elapsed += wait;
            attempt += 1;
            assert!(attempt < 100, "the policy must give up");
        }
        (attempt, elapsed)
    }

    #[test]
    fn imds_410_is_retried_for_at_least_70_seconds() {
        let (attempts, spent) = replay(TokenRetry::Imds, |_| Some(410));
        assert!(spent >= IMDS_GONE_FOR, "{spent:?}");
        assert!((6..12).contains(&attempts), "{attempts}");
        // The shortest waits the policy can draw still add up to 70 s.
        let mut worst = Duration::ZERO;
        for n in 1..attempts {
            worst += exponential(IMDS_GONE_BASE, n).mul_f64(0.8);
        }
        assert!(worst >= IMDS_GONE_FOR, "{worst:?}");
    }

    #[test]
    fn imds_updating_answers_are_retried_with_backoff() {
        for status in [Some(404), Some(408), Some(429), Some(500), Some(503), None] {
            let (attempts, _) = replay(TokenRetry::Imds, |_| status);
            assert_eq!(attempts, MI_RETRIES + 1, "{status:?}");
            let w1 = TokenRetry::Imds.next(status, 1, 0, Duration::ZERO).unwrap();
            let w3 = TokenRetry::Imds.next(status, 3, 0, Duration::ZERO).unwrap();
            assert!(w1 >= MI_BASE.mul_f64(0.8) && w1 <= MI_BASE.mul_f64(1.2));
            assert!(w3 >= MI_BASE.mul_f64(4.0 * 0.8), "exponential: {w3:?}");
        }
        for status in [400, 401, 403] {
            assert_eq!(
                TokenRetry::Imds.next(Some(status), 1, 0, Duration::ZERO),
                None
            );
        }
    }

    /// 404 then 410 (an update that starts): the 410s still get their 70 s,
    /// and their waits start again from the 410 base.
    #[test]
    fn imds_mixed_answers() {
        let (_, spent) = replay(TokenRetry::Imds, |n| Some(if n <= 2 { 404 } else { 410 }));
        assert!(spent >= IMDS_GONE_FOR, "{spent:?}");
        let first_gone = TokenRetry::Imds.next(Some(410), 3, 1, Duration::from_secs(2));
        assert!(first_gone.unwrap() <= IMDS_GONE_BASE.mul_f64(1.2));
    }

    #[test]
    fn app_service_and_standard() {
        assert_eq!(
            replay(TokenRetry::AppService, |_| Some(503)).0,
            MI_RETRIES + 1
        );
        assert_eq!(
            replay(TokenRetry::AppService, |_| Some(404)).0,
            1,
            "no host update there"
        );
        assert_eq!(replay(TokenRetry::AppService, |_| Some(410)).0, 1);
        assert_eq!(replay(TokenRetry::Standard, |_| Some(503)).0, 3);
        assert_eq!(replay(TokenRetry::Standard, |_| Some(404)).0, 1);
        assert_eq!(replay(TokenRetry::Standard, |_| Some(401)).0, 1);
    }
}
