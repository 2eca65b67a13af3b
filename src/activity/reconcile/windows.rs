//! Which window is due, on what grid, and the cursor the state file keeps
//! (with the query in flight): [`next_window`], and how the reconciler moves
//! its cursor past a window or halves the span it queries.

use super::{Phase, Reconciler, MIN_SPAN_SECS};
use crate::activity::Changed;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the state file keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Everything before this is reconciled (or could no longer be).
    pub until: i64,
    /// End of the newest window reconciled without failure; the start of
    /// the first window before any.
    #[serde(default)]
    pub proven: i64,
    /// The span being queried since an answer was truncated (halved until
    /// it fits; back to `window` at the next window); None: `window`.
    #[serde(default)]
    pub span: Option<i64>,
    /// The query in flight.
    #[serde(default)]
    pub query: Option<PendingQuery>,
    /// Unix times of the query submissions of the last 24 h.
    #[serde(default)]
    pub submitted: Vec<i64>,
    /// Per content type: still missing after repair in the last window.
    #[serde(default)]
    pub missing: BTreeMap<String, u64>,
}

/// A query submitted and not yet done with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingQuery {
    pub id: String,
    pub start: i64,
    pub end: i64,
    pub submitted: i64,
}

/// The next window to reconcile after `cursor`, if it ended `settle` ago:
/// from the cursor to the next multiple of `window` (or less, while a
/// truncated answer has the window queried in parts).
pub fn next_window(cursor: &Cursor, window: i64, settle: i64, now: i64) -> Option<(i64, i64)> {
    let start = cursor.until;
    let grid_end = (start.div_euclid(window) + 1) * window;
    let span = cursor.span.unwrap_or(window).max(1);
    let end = (start + span).min(grid_end);
    (end <= now - settle).then_some((start, end))
}

impl Reconciler {
    /// The cursor moves past `end` (the query in flight, if any, is done).
    pub(super) fn advance(&mut self, end: i64) {
        self.cursor.until = end;
        self.cursor.query = None;
        if end.rem_euclid(self.window) == 0 {
            self.cursor.span = None;
        }
        self.phase = Phase::Idle;
    }

    /// Query the window in halves from now on; false when it cannot be
    /// halved further.
    pub(super) fn split(&mut self, q: &PendingQuery, changed: &mut Changed) -> bool {
        let half = (q.end - q.start) / 2;
        if half < MIN_SPAN_SECS {
            return false;
        }
        self.cursor.span = Some(half);
        self.cursor.query = None;
        self.phase = Phase::Idle;
        *changed = Changed(true);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_and_wait_for_settle() {
        let h = 3_600;
        let mut c = Cursor {
            until: 10 * h + 600,
            ..Cursor::default()
        };
        // The first window runs from the lookback's start to the hour.
        assert_eq!(next_window(&c, h, 0, 11 * h), Some((10 * h + 600, 11 * h)));
        assert_eq!(next_window(&c, h, 0, 11 * h - 1), None);
        assert_eq!(next_window(&c, h, 24 * h, 34 * h), None);
        assert_eq!(
            next_window(&c, h, 24 * h, 35 * h),
            Some((10 * h + 600, 11 * h))
        );
        c.until = 11 * h;
        assert_eq!(next_window(&c, h, 0, 20 * h), Some((11 * h, 12 * h)));
        // Halved after a truncated answer, until the hour is done.
        c.span = Some(h / 2);
        assert_eq!(
            next_window(&c, h, 0, 20 * h),
            Some((11 * h, 11 * h + 1_800))
        );
        c.until = 11 * h + 1_800;
        assert_eq!(
            next_window(&c, h, 0, 20 * h),
            Some((11 * h + 1_800, 12 * h))
        );
        // A day's window.
        let c = Cursor {
            until: 5 * h,
            ..Cursor::default()
        };
        assert_eq!(next_window(&c, 24 * h, 0, 30 * h), Some((5 * h, 24 * h)));
    }

    #[test]
    fn cursors_of_older_files_and_new_ones_load() {
        let c: Cursor = serde_json::from_str(r#"{"until":5}"#).unwrap();
        assert_eq!((c.until, c.proven, c.query), (5, 0, None));
        let c = Cursor {
            until: 7,
            proven: 7,
            query: Some(PendingQuery {
                id: "q".into(),
                start: 1,
                end: 7,
                submitted: 3,
            }),
            ..Cursor::default()
        };
        let back: Cursor = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
