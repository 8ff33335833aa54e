//! Named pause points, so that a test can reproduce a race deterministically
//! instead of hoping a sleep lines it up: the test arms a point for one
//! organisation, the code path that reaches it stops there until the test
//! releases it, and the test does the racing work in between.
//!
//! A point can also be armed to panic ([`arm_panic`]), to show that a task
//! which dies there is restarted and that nothing acknowledged is lost.
//!
//! Nothing in the service arms a point; disarmed, [`point`] costs one atomic
//! load. A point fires once per arming.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// How many points are armed; zero on every production path.
static ARMED: AtomicUsize = AtomicUsize::new(0);

type Key = (&'static str, String);

fn armed() -> &'static Mutex<HashMap<Key, Arc<Gate>>> {
    static POINTS: std::sync::OnceLock<Mutex<HashMap<Key, Arc<Gate>>>> = std::sync::OnceLock::new();
    POINTS.get_or_init(Default::default)
}

struct Gate {
    arrived: Semaphore,
    go: Semaphore,
    /// Panic at the point instead of waiting.
    panic: bool,
}

/// An armed pause point: [`Pause::reached`] waits until the code stops there,
/// [`Pause::release`] (or dropping it) lets it go on.
pub struct Pause {
    key: Key,
    gate: Arc<Gate>,
}

/// Arms `name` for `org`: the next path to reach it for that organisation stops.
pub fn arm(name: &'static str, org: &str) -> Pause {
    arm_gate(name, org, false)
}

/// Arms `name` for `org` to panic: the next path to reach it for that
/// organisation panics there ([`Pause::reached`] returns once it has).
pub fn arm_panic(name: &'static str, org: &str) -> Pause {
    arm_gate(name, org, true)
}

fn arm_gate(name: &'static str, org: &str, panic: bool) -> Pause {
    let gate = Arc::new(Gate { arrived: Semaphore::new(0), go: Semaphore::new(0), panic });
    let key = (name, org.to_string());
    let mut points = armed().lock().unwrap_or_else(|p| p.into_inner());
    if points.insert(key.clone(), gate.clone()).is_none() {
        ARMED.fetch_add(1, Ordering::SeqCst);
    }
    Pause { key, gate }
}

impl Pause {
    /// Waits until a path has stopped at the point.
    pub async fn reached(&self) {
        self.gate.arrived.acquire().await.expect("pause gate is never closed").forget();
    }

    /// Lets the stopped path go on.
    pub fn release(self) {}
}

impl Drop for Pause {
    fn drop(&mut self) {
        self.gate.go.add_permits(1);
        let mut points = armed().lock().unwrap_or_else(|p| p.into_inner());
        if points.get(&self.key).is_some_and(|g| Arc::ptr_eq(g, &self.gate)) {
            points.remove(&self.key);
            ARMED.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Stops here if a test armed `name` for `org`.
pub async fn point(name: &'static str, org: &str) {
    if ARMED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let gate = {
        let mut points = armed().lock().unwrap_or_else(|p| p.into_inner());
        let Some(gate) = points.remove(&(name, org.to_string())) else { return };
        ARMED.fetch_sub(1, Ordering::SeqCst);
        gate
    };
    gate.arrived.add_permits(1);
    if gate.panic {
        panic!("pause point {name} armed to panic");
    }
    if let Ok(permit) = gate.go.acquire().await {
        permit.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_armed_point_holds_its_path_until_released_and_fires_once() {
        let pause = arm("test.point", "org-a");
        point("test.point", "org-b").await; // another organisation passes
        let path = tokio::spawn(async {
            point("test.point", "org-a").await;
            point("test.point", "org-a").await; // disarmed after the first
        });
        pause.reached().await;
        assert!(!path.is_finished());
        pause.release();
        path.await.expect("path finishes once released");
    }
}
