use std::fmt;

/// One queue of one module, written `module.queue`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRef {
    /// The module's instance name.
    pub module: String,
    /// The queue's name on that module.
    pub queue: String,
}

/// One line of the routing table: `from` feeds `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The queue events leave by.
    pub from: QueueRef,
    /// The queue they arrive in.
    pub to: QueueRef,
}

impl fmt::Display for QueueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.queue)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.from, self.to)
    }
}

impl QueueRef {
    fn parse(text: &str) -> Option<QueueRef> {
        let (module, queue) = text.trim().split_once('.')?;
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        (valid(module) && valid(queue)).then(|| QueueRef {
            module: module.to_string(),
            queue: queue.to_string(),
        })
    }
}

impl Route {
    /// Parses `module.queue -> module.queue`; `None` when the line has another shape.
    pub fn parse(line: &str) -> Option<Route> {
        let (from, to) = line.split_once("->")?;
        Some(Route {
            from: QueueRef::parse(from)?,
            to: QueueRef::parse(to)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_article_form() {
        let route = Route::parse("input.outbox -> roundrobin.inbox").unwrap();
        assert_eq!(route.from.module, "input");
        assert_eq!(route.to.queue, "inbox");
        assert_eq!(route.to_string(), "input.outbox -> roundrobin.inbox");
        assert!(Route::parse("input.outbox->output_1.inbox").is_some());
    }

    #[test]
    fn refuses_other_shapes() {
        for line in [
            "input -> output.inbox",
            "input.outbox => output.inbox",
            "a.b.c -> d.e",
            "a.b -> ",
            "",
        ] {
            assert_eq!(Route::parse(line), None, "{line}");
        }
    }
}
