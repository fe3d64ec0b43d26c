/// Queues every module has besides its own, as in the original Wishbone.
/// Unless a route connects them, what a module puts on them is dropped and
/// counted. The original's `logs` and `metrics` queues are not offered:
/// log records go to standard error and metrics to the `metrics` recorder.
pub const RESERVED_QUEUES: [&str; 2] = ["failed", "success"];

/// The queues one kind of module has, used to check a routing table before
/// anything starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// Queues other modules can route into (a TCP output's `inbox`).
    pub incoming: &'static [&'static str],
    /// Queues this module puts events on (a TCP input's `outbox`), besides
    /// the reserved ones.
    pub outgoing: &'static [&'static str],
    /// Any name is an incoming queue (a funnel's inbound queues are named by
    /// the routing table).
    pub any_incoming: bool,
    /// Any name is an outgoing queue (a round robin's destinations).
    pub any_outgoing: bool,
}

impl QueueSpec {
    /// A module that only produces: `outbox`.
    pub const SOURCE: QueueSpec = QueueSpec {
        incoming: &[],
        outgoing: &["outbox"],
        any_incoming: false,
        any_outgoing: false,
    };

    /// A module that only consumes: `inbox`.
    pub const SINK: QueueSpec = QueueSpec {
        incoming: &["inbox"],
        outgoing: &[],
        any_incoming: false,
        any_outgoing: false,
    };

    /// A module in the middle: `inbox` to `outbox`.
    pub const PROCESS: QueueSpec = QueueSpec {
        incoming: &["inbox"],
        outgoing: &["outbox"],
        any_incoming: false,
        any_outgoing: false,
    };

    /// Whether a route may start at `queue` of this module.
    pub fn has_outgoing(&self, queue: &str) -> bool {
        self.any_outgoing || self.outgoing.contains(&queue) || RESERVED_QUEUES.contains(&queue)
    }

    /// Whether a route may end at `queue` of this module.
    pub fn has_incoming(&self, queue: &str) -> bool {
        (self.any_incoming && !RESERVED_QUEUES.contains(&queue)) || self.incoming.contains(&queue)
    }

    /// The names a user may route from, for error messages.
    pub fn describe_outgoing(&self) -> String {
        let mut names: Vec<&str> = self.outgoing.to_vec();
        names.extend(RESERVED_QUEUES);
        let list = names.join(", ");
        if self.any_outgoing {
            format!("{list}, or any other name")
        } else {
            list
        }
    }

    /// The names a user may route into, for error messages.
    pub fn describe_incoming(&self) -> String {
        let list = self.incoming.join(", ");
        match (self.any_incoming, list.is_empty()) {
            (true, true) => "any name".to_string(),
            (true, false) => format!("{list}, or any other name"),
            (false, true) => "none: it takes no events".to_string(),
            (false, false) => list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_queues_are_outgoing_on_every_module() {
        assert!(QueueSpec::SINK.has_outgoing("failed"));
        assert!(!QueueSpec::SINK.has_outgoing("outbox"));
        assert!(QueueSpec::SOURCE.has_outgoing("outbox"));
    }

    #[test]
    fn any_incoming_still_refuses_reserved_names() {
        let funnel = QueueSpec {
            any_incoming: true,
            ..QueueSpec::SOURCE
        };
        assert!(funnel.has_incoming("two"));
        assert!(!funnel.has_incoming("failed"));
        assert_eq!(funnel.describe_incoming(), "any name");
    }
}
