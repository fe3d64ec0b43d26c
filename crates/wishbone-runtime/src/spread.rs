//! The threads a module may spread its own work over: with `--threads`
//! above 1, a listening input serves each client on the thread where the
//! module has the fewest clients, its own thread first among equals, so
//! that one client stays where the module's queues are and several share
//! the cores. A client's future is built on the thread it runs on (it need
//! not be `Send`); what is sent there is a function that builds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::ArbiterHandle;

/// The module's threads and how much of its work each holds.
#[derive(Clone, Debug)]
pub struct Spread {
    threads: Arc<[ArbiterHandle]>,
    /// Where the module itself runs.
    home: usize,
    /// What the module has on each thread now.
    held: Arc<[AtomicUsize]>,
}

/// One piece of work placed on a thread: the thread counts it until this
/// is dropped.
#[derive(Debug)]
pub struct Placed {
    held: Arc<[AtomicUsize]>,
    index: usize,
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.held[self.index].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Spread {
    pub(crate) fn new(threads: Arc<[ArbiterHandle]>, home: usize) -> Self {
        let held = (0..threads.len()).map(|_| AtomicUsize::new(0)).collect();
        Self {
            threads,
            home,
            held,
        }
    }

    /// How many threads the work may go to.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Runs `work` on the thread that holds the least of this module's
    /// work (its own thread first among equals), within that thread's
    /// event loop: it may spawn `!Send` futures with `tokio::task::spawn_local`.
    /// The thread counts the work until `work`'s [`Placed`] is dropped.
    /// Returns false when that thread has stopped (`work` is dropped, not
    /// run).
    pub fn run(&self, work: impl FnOnce(Placed) + Send + 'static) -> bool {
        let index = least_held(&self.held, self.home);
        self.held[index].fetch_add(1, Ordering::Relaxed);
        let placed = Placed {
            held: self.held.clone(),
            index,
        };
        self.threads[index].spawn_fn(move || work(placed))
    }
}

/// The thread holding the least, `home` first among equals, then the
/// first.
fn least_held(held: &[AtomicUsize], home: usize) -> usize {
    held.iter()
        .enumerate()
        .min_by_key(|(index, held)| (held.load(Ordering::Relaxed), *index != home, *index))
        .map_or(home, |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(counts: &[usize]) -> Vec<AtomicUsize> {
        counts
            .iter()
            .map(|count| AtomicUsize::new(*count))
            .collect()
    }

    #[test]
    fn work_goes_home_first_then_where_least_is_held() {
        assert_eq!(least_held(&held(&[0, 0, 0]), 1), 1, "home among equals");
        assert_eq!(least_held(&held(&[0, 1, 0]), 1), 0, "then the first");
        assert_eq!(least_held(&held(&[2, 1, 1]), 2), 2);
        assert_eq!(least_held(&held(&[2, 3, 1]), 0), 2);
    }

    #[test]
    fn placed_work_is_counted_until_it_is_dropped() {
        let system = actix::System::new();
        let arbiters = [actix::Arbiter::new(), actix::Arbiter::new()];
        let threads: Arc<[ArbiterHandle]> = arbiters.iter().map(|a| a.handle()).collect();
        let spread = Spread::new(threads, 1);
        let (sent, placed) = std::sync::mpsc::channel();
        for _ in 0..3 {
            let sent = sent.clone();
            assert!(spread.run(move |placed| {
                let thread = std::thread::current().id();
                sent.send((placed.index, thread, placed)).unwrap();
            }));
        }
        let mut got: Vec<_> = (0..3).map(|_| placed.recv().unwrap()).collect();
        got.sort_by_key(|(index, ..)| *index);
        let indexes: Vec<usize> = got.iter().map(|(index, ..)| *index).collect();
        assert_eq!(indexes, [0, 1, 1], "home, the other, then home again");
        assert_ne!(got[0].1, got[1].1, "two threads");
        assert_eq!(got[1].1, got[2].1);
        assert_ne!(got[0].1, std::thread::current().id());
        drop(got.remove(1));
        drop(got.remove(1));
        assert_eq!(least_held(&spread.held, 1), 1, "home holds nothing again");
        for arbiter in arbiters {
            arbiter.stop();
        }
        drop(system);
    }
}
