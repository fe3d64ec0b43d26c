//! The threads modules run on (`--threads`).
//!
//! With one thread every module runs on the server's own thread, as an
//! actix actor among the others. With more, the server starts that many
//! actix arbiters (a thread with its own event loop each) and places each
//! pipeline of the file (the modules joined by routes) on the least busy
//! of them: the modules of one pipeline hand each other their parcels on
//! one thread, as cheaply as with one thread, and separate pipelines (and
//! modules with no routes, such as a Prometheus page) run side by side. A
//! module whose work per event is long ([`crate::Module::cpu_bound`]: a jq
//! program or condition in jaq) goes to the least busy thread instead, so
//! that a chain of such modules runs on several cores; it also shares
//! each parcel's events out to a pool of threads ([`crate::workers`]), so
//! that one such module alone uses several cores. A module may spread
//! work of its own over the threads ([`crate::Spread`]): a listening
//! input its clients.
//! Handing every parcel to another thread costs more than it gains for
//! modules that do little per event: placing a scenario's input and
//! output on two threads moved 0.71x the lines of one thread on the
//! 2-core development machine (`docs/performance.md`). The server's own
//! thread runs no module: signals, stop and reload answer whatever a
//! module does. A module's future is built on the thread it runs on, so
//! it need not be `Send`; what crosses threads are its queues, which are.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Actor, Arbiter, ArbiterHandle};

use crate::ModuleActor;
use crate::spread::Spread;

/// Where modules are started.
pub(crate) struct Threads {
    arbiters: Vec<Arbiter>,
    /// The same threads, for the modules' [`Spread`].
    handles: Arc<[ArbiterHandle]>,
    /// The arbiter of each pipeline, by the name of its first module.
    placed: HashMap<String, usize>,
    /// Pipelines and CPU-bound modules placed on each arbiter.
    load: Vec<usize>,
}

impl Threads {
    /// `count` threads of modules; 1 (or 0) is the server's own.
    pub(crate) fn new(count: usize) -> Self {
        let arbiters = if count > 1 {
            (0..count).map(|_| Arbiter::new()).collect()
        } else {
            Vec::new()
        };
        let load = vec![0; arbiters.len()];
        let handles = arbiters.iter().map(Arbiter::handle).collect();
        Self {
            arbiters,
            handles,
            placed: HashMap::new(),
            load,
        }
    }

    /// Where a module of `pipeline` goes: the thread of its pipeline
    /// (named by its first module; the least busy thread for a pipeline
    /// not placed yet), or, `cpu_bound`, the least busy thread; `None`
    /// with one thread (the server's own).
    pub(crate) fn place(&mut self, pipeline: &str, cpu_bound: bool) -> Option<usize> {
        if self.arbiters.is_empty() {
            return None;
        }
        Some(match (cpu_bound, self.placed.get(pipeline)) {
            (false, Some(index)) => *index,
            (false, None) => {
                let index = self.least_busy();
                self.placed.insert(pipeline.to_string(), index);
                index
            }
            (true, _) => self.least_busy(),
        })
    }

    /// The threads a module placed at `home` may spread its work over.
    pub(crate) fn spread(&self, home: Option<usize>) -> Option<Spread> {
        home.map(|home| Spread::new(self.handles.clone(), home))
    }

    /// Starts the module's actor where [`Threads::place`] put it.
    pub(crate) fn start(&self, actor: ModuleActor, home: Option<usize>) {
        match home {
            None => {
                actor.start();
            }
            Some(index) => {
                ModuleActor::start_in_arbiter(&self.handles[index], move |_| actor);
            }
        }
    }

    /// The thread with the fewest pipelines and CPU-bound modules (the
    /// first of those), counted as taken once more.
    fn least_busy(&mut self) -> usize {
        let index = placement(&self.load);
        self.load[index] += 1;
        index
    }
}

/// The index of the smallest load, the first of equals.
fn placement(load: &[usize]) -> usize {
    load.iter()
        .enumerate()
        .min_by_key(|(index, load)| (**load, *index))
        .map_or(0, |(index, _)| index)
}

impl Drop for Threads {
    /// Ends the threads once their modules are gone.
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::placement;

    #[test]
    fn the_least_busy_thread_is_chosen_the_first_of_equals() {
        assert_eq!(placement(&[0, 0]), 0);
        assert_eq!(placement(&[1, 0]), 1);
        assert_eq!(placement(&[2, 1, 1]), 1);
    }
}
