//! Task ownership shared by the supervisors (the collectors' in
//! `collect::schedule`, the audit feed's in `activity::feed`).

use tokio::task::JoinHandle;

/// A spawned task that is aborted when this is dropped: a supervisor holds
/// its child in one, so aborting (or dropping) the supervisor stops the
/// child too.
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
