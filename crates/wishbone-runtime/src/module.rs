use futures::future::LocalBoxFuture;
use wishbone_bootstrap::{ArgumentError, Arguments};
use wishbone_event::QueueSpec;

use crate::ModuleContext;

/// A running piece of a wishbone server.
///
/// `run` owns the module for its whole life: it takes its queues from the
/// context, moves events until its work is done, and returns. A source stops
/// producing when [`ModuleContext::stopping`] fires; every other module
/// finishes when its incoming queues close (every sender gone, queue empty),
/// which is how a stop drains the pipeline from the inputs to the outputs.
pub trait Module: Send + 'static {
    /// Runs the module to completion.
    fn run(
        self: Box<Self>,
        context: ModuleContext,
    ) -> LocalBoxFuture<'static, Result<(), ModuleError>>;

    /// Where the module listens for connections, if it does: the launcher
    /// of `wishbone start --instances N` binds it once for every instance.
    /// A module that listens gets that socket from
    /// [`ModuleContext::listener`].
    fn listens(&self) -> Option<crate::ListenAddress> {
        None
    }

    /// The outgoing queues this module's arguments name, for a kind whose
    /// [`QueueSpec`](crate::QueueSpec) takes any name (a queueselect's
    /// rules): routes from any other name (but `failed` and `success`) are
    /// refused when the bootstrap is checked. `None` takes any name.
    fn outgoing_queues(&self) -> Option<Vec<String>> {
        None
    }

    /// The arguments a running module of this kind takes without a
    /// restart, from [`ModuleContext::updates`]: a reload that changes only
    /// these (and no route of the module) keeps it running with its
    /// connections, and hands it the new arguments. None by default: any
    /// change replaces the module.
    fn live_arguments(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the module's work per event is long (a jq condition or
    /// program that runs in jaq): with `--threads` above 1 it then runs on
    /// the least busy thread rather than its pipeline's, so that a chain of
    /// such modules uses several cores. (Such a module may also share its
    /// work on a parcel out to the pool of [`crate::workers`] through
    /// [`crate::turn::map_in_turn`], as the built-in ones do.) Handing
    /// parcels between threads costs more than it gains for quick modules,
    /// which stay with their pipeline. False by default.
    fn cpu_bound(&self) -> bool {
        false
    }

    /// Whether this module may replace a running one of the same name that
    /// was built from `previous` (a reload that changed its arguments). An
    /// error refuses the whole reload, with nothing touched, and says why:
    /// a write-ahead buffer whose `path` changes would strand the events
    /// its old log holds. Any replacement is fine by default.
    fn may_replace(&self, previous: &Arguments) -> Result<(), String> {
        let _ = previous;
        Ok(())
    }
}

/// Why a module ended before its work was done. The supervisor totals
/// [`ModuleError::undelivered`] over every module of a stop.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Stopped by an abort (a second stop signal, or `--drain-timeout`)
    /// while still holding events it had accepted.
    #[error("aborted with {undelivered} events undelivered")]
    Aborted {
        /// Events the module held and did not pass on.
        undelivered: usize,
    },
    /// A queue it sends to closed: the module behind it is gone.
    #[error("queue `{queue}` downstream is gone; {undelivered} events undelivered")]
    DownstreamGone {
        /// The module's own queue whose other end is gone.
        queue: String,
        /// Events the module held and could not pass on.
        undelivered: usize,
    },
    /// A failure of the system, such as a port already in use.
    #[error("{context}: {source}")]
    Io {
        /// What the module was doing.
        context: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl ModuleError {
    /// Events the module held when it ended, and did not pass on.
    pub fn undelivered(&self) -> usize {
        match self {
            ModuleError::Aborted { undelivered }
            | ModuleError::DownstreamGone { undelivered, .. } => *undelivered,
            ModuleError::Io { .. } | ModuleError::Other(_) => 0,
        }
    }

    /// The same error, counting `more` events the module held besides.
    pub fn holding_more(self, more: usize) -> Self {
        match self {
            ModuleError::Aborted { undelivered } => ModuleError::Aborted {
                undelivered: undelivered + more,
            },
            ModuleError::DownstreamGone { queue, undelivered } => ModuleError::DownstreamGone {
                queue,
                undelivered: undelivered + more,
            },
            other => other,
        }
    }

    /// An I/O failure with what the module was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ModuleError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Everything the runtime and the `wishbone` command know of one kind of
/// module: one entry in a [`crate::ModuleSet`].
#[derive(Clone, Copy, Debug)]
pub struct ModuleKind {
    /// The name a bootstrap uses, `wishbone.output.tcp`.
    pub name: &'static str,
    /// Older names still accepted, `wishbone.builtin.flow.roundrobin`.
    pub aliases: &'static [&'static str],
    /// One line for `wishbone list`.
    pub description: &'static str,
    /// What `wishbone show --docs` prints: queues, arguments with their
    /// defaults, and an example.
    pub docs: &'static str,
    /// The queues routes may name.
    pub queues: QueueSpec,
    /// Builds a module from its arguments without starting it; `wishbone
    /// check` calls it to validate arguments.
    pub build: fn(&Arguments) -> Result<Box<dyn Module>, ArgumentError>,
}

#[cfg(test)]
mod tests {
    use super::ModuleError;

    #[test]
    fn only_errors_that_held_events_count_them() {
        assert_eq!(ModuleError::Aborted { undelivered: 7 }.undelivered(), 7);
        let gone = ModuleError::DownstreamGone {
            queue: "outbox".into(),
            undelivered: 3,
        };
        assert_eq!(gone.undelivered(), 3);
        assert_eq!(
            gone.to_string(),
            "queue `outbox` downstream is gone; 3 events undelivered"
        );
        let io = ModuleError::io(
            "cannot listen on 0.0.0.0:1",
            std::io::ErrorKind::AddrInUse.into(),
        );
        assert_eq!(io.undelivered(), 0);
        assert_eq!(gone.holding_more(4).undelivered(), 7);
        assert!(io.to_string().starts_with("cannot listen on 0.0.0.0:1: "));
    }
}
