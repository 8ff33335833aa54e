//! What server streams (`WatchEvents`, `WatchRanking`) share:
//!
//! - **Limits**: at most `per_caller` open streams per (organisation, user) and
//!   `total` over all callers; past either, `RESOURCE_EXHAUSTED` with a
//!   `RetryInfo`. A stream holds its permit until it ends (the client went
//!   away, or the server stops), not just while its handler runs.
//! - **One feed per organisation**: the organisation's latest event sequence,
//!   polled by one task however many streams watch it (on every local commit
//!   at once, and every second for other replicas' commits). A stream reads
//!   the event log only when the feed says there is something past what it
//!   has seen; 2,000 idle streams of one organisation cost one query a second,
//!   not 2,000.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::auth::Caller;
use crate::error::Error;
use crate::store::Store;

/// How often a feed looks for events other replicas committed.
pub const FEED_POLL: Duration = Duration::from_secs(1);
/// The wait a refused stream is told to allow before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Open-stream limits.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Streams one (organisation, user) may hold open at once.
    pub per_caller: usize,
    /// Streams open at once over all callers.
    pub total: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        // A dashboard, a CLI and an integration or two per user: 16 leaves
        // room; 1,024 idle streams cost little memory and, with one feed per
        // organisation, little polling.
        StreamSettings { per_caller: 16, total: 1_024 }
    }
}

/// Counts open streams against the limits.
pub struct StreamLimits {
    settings: StreamSettings,
    total: Arc<Semaphore>,
    by_caller: Arc<Mutex<HashMap<(String, String), usize>>>,
}

/// One open stream's place; given back when dropped.
pub struct StreamPermit {
    _total: tokio::sync::OwnedSemaphorePermit,
    key: (String, String),
    by_caller: Arc<Mutex<HashMap<(String, String), usize>>>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut by_caller = lock(&self.by_caller);
        if let Some(n) = by_caller.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                by_caller.remove(&self.key);
            }
        }
    }
}

impl StreamLimits {
    pub fn new(settings: StreamSettings) -> Self {
        StreamLimits {
            settings,
            total: Arc::new(Semaphore::new(settings.total.max(1))),
            by_caller: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more stream of `caller`, or `RESOURCE_EXHAUSTED`.
    pub fn open(&self, caller: &Caller) -> Result<StreamPermit, Error> {
        let key = (caller.org.clone(), caller.user.clone());
        let mut by_caller = lock(&self.by_caller);
        let open = by_caller.get(&key).copied().unwrap_or(0);
        if open >= self.settings.per_caller {
            return Err(Error::ResourceExhausted {
                message: format!(
                    "this token already holds {open} open streams (at most {}); close one or retry later",
                    self.settings.per_caller
                ),
                retry_after: RETRY_AFTER,
            });
        }
        let Ok(total) = self.total.clone().try_acquire_owned() else {
            return Err(Error::ResourceExhausted {
                message: "the server holds as many open streams as it allows; retry later".into(),
                retry_after: RETRY_AFTER,
            });
        };
        *by_caller.entry(key.clone()).or_default() += 1;
        Ok(StreamPermit { _total: total, key, by_caller: self.by_caller.clone() })
    }
}

/// Per organisation: its latest event sequence, kept by one poller.
pub struct EventFeeds {
    store: Store,
    feeds: Mutex<HashMap<String, watch::Sender<i64>>>,
}

impl EventFeeds {
    pub fn new(store: Store) -> Self {
        EventFeeds { store, feeds: Mutex::new(HashMap::new()) }
    }

    /// The organisation's latest event sequence as it changes. The first
    /// subscriber starts the organisation's poller; it stops when the last
    /// subscriber is gone.
    pub fn subscribe(&self, org: &str) -> watch::Receiver<i64> {
        let mut feeds = lock(&self.feeds);
        if let Some(feed) = feeds.get(org)
            && !feed.is_closed()
        {
            return feed.subscribe();
        }
        let (feed, latest) = watch::channel(0);
        feeds.insert(org.to_string(), feed.clone());
        tokio::spawn(poll_feed(self.store.clone(), org.to_string(), feed));
        latest
    }

    /// Organisations with a poller running (for tests and metrics).
    pub fn pollers(&self) -> usize {
        lock(&self.feeds).values().filter(|f| !f.is_closed()).count()
    }
}

async fn poll_feed(store: Store, org: String, feed: watch::Sender<i64>) {
    // Subscribed before the first read, so no local commit falls between them.
    let mut commits = store.watch_events();
    loop {
        crate::metrics::global().record_event_feed_poll();
        match store.latest_sequence(&org).await {
            Ok(latest) => {
                feed.send_if_modified(|seen| {
                    let newer = latest > *seen;
                    *seen = (*seen).max(latest);
                    newer
                });
            }
            Err(e) => tracing::warn!(%org, error = %e, "event feed: reading the latest sequence failed"),
        }
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(FEED_POLL).await;
                }
            }
            () = tokio::time::sleep(FEED_POLL) => {}
            () = feed.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str) -> Caller {
        Caller { org: "acme".into(), user: user.into(), roles: Default::default() }
    }

    #[test]
    fn streams_are_limited_per_caller_and_in_total_and_given_back_when_dropped() {
        let limits = StreamLimits::new(StreamSettings { per_caller: 2, total: 3 });
        let a1 = limits.open(&caller("a")).expect("first");
        let _a2 = limits.open(&caller("a")).expect("second");
        let refused = limits.open(&caller("a")).err().expect("third of one caller");
        assert!(matches!(refused, Error::ResourceExhausted { .. }));
        let _b1 = limits.open(&caller("b")).expect("another caller");
        assert!(limits.open(&caller("c")).is_err(), "the total is reached");
        drop(a1);
        let _c1 = limits.open(&caller("c")).expect("a place was given back");
    }
}
