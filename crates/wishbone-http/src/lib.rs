//! HTTP for wishbone: `wishbone.output.http` sends events as NDJSON
//! batches to a store (ClickHouse, an Elasticsearch `_bulk`, a webhook) on
//! the one output pump of `wishbone-output`. It lives in a crate of its
//! own for its HTTP client (hyper).

#![warn(missing_docs)]

pub mod batching;
pub mod output;
