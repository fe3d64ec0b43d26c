//! The pool of threads a module shares one parcel's work out to: a filter,
//! queueselect or jq program that runs in jaq spends long on each event
//! (and a decoder, less, on many), and one such module on one thread
//! bounds a whole pipeline however many cores the host has. With
//! `--threads N` above 1, such a module hands its events to a pool of N
//! threads (rayon's, built once per size and kept for the life of the
//! process) and takes the results back in the events' order, so the order
//! within a queue, the tokens and the routing stay what they are on one
//! thread (`crate::turn::map_in_turn`, `crate::turn::map_shared`).
//!
//! The module's own thread waits while the pool works, so the pool adds
//! threads to the arbiters but not work: on N cores, N pool threads and
//! the pipelines' threads share them as the kernel schedules. A runaway
//! event holds one pool thread for at most its budget (1 s in jaq), which
//! is also how long another module's share may wait for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::turn::Turn;

/// A pool of threads that work on one module's events at a time, or on
/// several modules' events side by side.
#[derive(Debug)]
pub struct Pool(rayon::ThreadPool);

/// The process's pool of `count` threads, built on first use; `None` for
/// one thread (the module works on its own) or when the threads cannot be
/// started (logged once; the module then works on its own).
pub fn pool(count: usize) -> Option<Arc<Pool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Option<Arc<Pool>>>>> = OnceLock::new();
    if count <= 1 {
        return None;
    }
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    pools
        .entry(count)
        .or_insert_with(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(count)
                .thread_name(|index| format!("wishbone-worker-{index}"))
                .build()
                .map(|pool| Arc::new(Pool(pool)))
                .inspect_err(|error| {
                    tracing::warn!(%error, count, "cannot start the worker threads; CPU-bound modules work on their own thread")
                })
                .ok()
        })
        .clone()
}

/// The longest piece of events a thread takes at once, and how long a
/// piece may last before the next is no longer doubled.
const MAX_PIECE: usize = 64;
const QUICK_PIECE: Duration = Duration::from_micros(200);

impl Pool {
    /// What `f` makes of each of `events`, in order from the first, for as
    /// many as `turn` allows (at least one, every one if it never ends).
    /// Every thread of the pool takes the next piece of events in turn
    /// (one event, then twice as many while a piece takes under 200 µs,
    /// up to 64) until the events or the turn run out; what was taken is
    /// always finished, so what is done is a run from the first event, and
    /// a turn is overrun by at most one piece a thread. The calling thread
    /// waits; a panic in `f` is the caller's, as it would be on one thread.
    pub fn map_in_turn<T: Send>(
        &self,
        events: &[&[u8]],
        f: &(impl Fn(&[u8]) -> T + Sync),
        turn: Turn,
    ) -> Vec<T> {
        let next = AtomicUsize::new(0);
        let taken: Vec<Vec<(usize, Vec<T>)>> = self.0.broadcast(|_| {
            let mut pieces = Vec::new();
            let mut size = 1;
            while !(turn.is_over() && next.load(Ordering::Relaxed) > 0) {
                let start = next.fetch_add(size, Ordering::Relaxed);
                let Some(piece) = events.get(start..(start + size).min(events.len())) else {
                    break;
                };
                let began = Instant::now();
                pieces.push((start, piece.iter().map(|data| f(data)).collect()));
                if began.elapsed() < QUICK_PIECE {
                    size = (size * 2).min(MAX_PIECE);
                }
            }
            pieces
        });
        let mut pieces: Vec<(usize, Vec<T>)> = taken.into_iter().flatten().collect();
        pieces.sort_unstable_by_key(|(start, _)| *start);
        let mut out = Vec::with_capacity(events.len().min(next.into_inner()));
        for (_, results) in pieces {
            out.extend(results);
        }
        out
    }

    /// How many threads the pool has.
    pub fn threads(&self) -> usize {
        self.0.current_num_threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_no_pool_and_a_size_is_built_once() {
        assert!(pool(1).is_none());
        let two = pool(2).expect("a pool of two");
        assert_eq!(two.threads(), 2);
        assert!(Arc::ptr_eq(&two, &pool(2).expect("the same pool")));
    }

    #[test]
    fn results_come_back_in_order_from_several_threads() {
        let pool = pool(3).expect("a pool of three");
        let texts: Vec<String> = (0..10_000).map(|n| n.to_string()).collect();
        let events: Vec<&[u8]> = texts.iter().map(String::as_bytes).collect();
        let threads = Mutex::new(std::collections::HashSet::new());
        let out = pool.map_in_turn(
            &events,
            &|data: &[u8]| {
                threads.lock().unwrap().insert(std::thread::current().id());
                std::str::from_utf8(data).unwrap().parse::<usize>().unwrap()
            },
            Turn::start(false),
        );
        assert_eq!(out.len(), 10_000);
        assert!(out.iter().enumerate().all(|(index, n)| index == *n));
        assert!(
            !threads
                .lock()
                .unwrap()
                .contains(&std::thread::current().id())
        );
    }
}
