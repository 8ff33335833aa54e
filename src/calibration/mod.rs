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
/// Synthetic organisations with known truth live with the tools
/// (`src/cmd/synthetic.rs`); the engine's own tests borrow the same file.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../cmd/synthetic.rs"]
pub(crate) mod synthetic;

/// z such that a standard normal has 90% of its mass in (−z, z).
pub const Z90: f64 = 1.644_853_626_951_472_2;

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
