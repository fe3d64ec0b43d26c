//! Modules that route events between queues.

pub mod fanout;
pub mod funnel;
pub mod roundrobin;
