//! The threads modules run on (`--threads`).
//!
//! With one thread every module runs on the server's own thread, as an
//! actix actor among the others. With more, the server starts that many
//! actix arbiters (a thread with its own event loop each) and places each
//! module it starts on the next of them in turn, so that neighbouring
//! modules of a chain (started downstream first) run on different threads
//! and a chain of busy modules uses every core. The server's own thread
//! then runs no module: signals, stop and reload answer whatever a module
//! does. A module's future is built on the thread it runs on, so it need
//! not be `Send`; what crosses threads are its queues, which are.

use actix::{Actor, Arbiter};

use crate::ModuleActor;

/// Where modules are started.
pub(crate) struct Threads {
    arbiters: Vec<Arbiter>,
    /// The arbiter the next module goes to.
    next: usize,
}

impl Threads {
    /// `count` threads of modules; 1 (or 0) is the server's own.
    pub(crate) fn new(count: usize) -> Self {
        let arbiters = if count > 1 {
            (0..count).map(|_| Arbiter::new()).collect()
        } else {
            Vec::new()
        };
        Self { arbiters, next: 0 }
    }

    /// Starts a module's actor on the next thread.
    pub(crate) fn start(&mut self, actor: ModuleActor) {
        if self.arbiters.is_empty() {
            actor.start();
            return;
        }
        let arbiter = &self.arbiters[self.next % self.arbiters.len()];
        self.next = self.next.wrapping_add(1);
        ModuleActor::start_in_arbiter(&arbiter.handle(), move |_| actor);
    }
}

impl Drop for Threads {
    /// Ends the threads once their modules are gone.
    fn drop(&mut self) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}
