//! HTTP for wishbone: `wishbone.output.http` sends events as NDJSON
//! batches to a store (ClickHouse, an Elasticsearch `_bulk`, a webhook) on
//! the one output pump of `wishbone-output`; `wishbone.input.http` takes
//! POSTed lines on the shared listener of `wishbone-listen` and answers
//! once they are acknowledged downstream. It lives in a crate of its own
//! for hyper, its HTTP client and server.

#![warn(missing_docs)]

pub mod batching;
pub mod encoding;
pub mod input;
pub mod output;
