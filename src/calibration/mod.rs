//! The statistics engine: calibrated scores with intervals, rater diagnostics,
//! and inter-rater reliability. Pure: no I/O, no async, no clocks; the same
//! input always gives the same output.

pub mod decisions;
pub mod differentials;
pub mod model;
pub mod normal;
pub mod raters;
pub mod reliability;
pub mod scores;
pub mod snapshot;
/// Synthetic organisations with known truth live with the tools
/// (`src/cmd/synthetic.rs`); the engine's own tests borrow the same file.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../cmd/synthetic.rs"]
pub(crate) mod synthetic;

/// z such that a standard normal has 90% of its mass in (−z, z).
pub const Z90: f64 = 1.644_853_626_951_472_2;

/// `f` of every part, on every core (up to 8 threads), returned in the parts'
/// order: each part's result depends on the part only, never on how many
/// cores there are or which one took it. Threads take the next part as they
/// finish one, so unequal parts still share the cores.
pub(crate) fn on_every_core<P: Send, R: Send>(parts: Vec<P>, f: impl Fn(P) -> R + Sync) -> Vec<R> {
    let count = parts.len();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8).min(count);
    let parts: Vec<std::sync::Mutex<Option<P>>> = parts.into_iter().map(|p| std::sync::Mutex::new(Some(p))).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(part) = parts.get(i) else { break };
                        let part = part.lock().unwrap_or_else(|e| e.into_inner()).take().expect("each part once");
                        mine.push((i, f(part)));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    done.sort_unstable_by_key(|d| d.0);
    done.into_iter().map(|d| d.1).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_part_is_computed_once_and_returned_in_order() {
        let parts: Vec<u64> = (0..37).collect();
        assert_eq!(super::on_every_core(parts, |p| p * p), (0..37u64).map(|p| p * p).collect::<Vec<_>>());
        assert!(super::on_every_core(Vec::<u8>::new(), |p| p).is_empty());
    }
}

/// Dense indices (the model's numbers) for ids, given on first sight.
#[derive(Debug, Default, Clone)]
pub struct Index<K: std::hash::Hash + Eq + Clone> {
    pub ids: Vec<K>,
    pub by_id: std::collections::HashMap<K, u32>,
}

impl<K: std::hash::Hash + Eq + Clone> Index<K> {
    pub fn get_or_insert(&mut self, key: &K) -> u32 {
        if let Some(&i) = self.by_id.get(key) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(key.clone());
        self.by_id.insert(key.clone(), i);
        i
    }
    pub fn get(&self, key: &K) -> Option<u32> {
        self.by_id.get(key).copied()
    }
}
