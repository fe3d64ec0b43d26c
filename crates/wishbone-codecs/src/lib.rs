//! What wishbone's inputs and outputs put on and take off the wire, each a
//! small type with its own tests, shared by inputs and outputs alike:
//!
//! - [`lines`]: a byte stream cut at a delimiter ([`lines::LineFramer`]),
//!   with a bound on how long an event may grow ([`lines::Overlong`]);
//! - [`octet_counted`]: RFC 6587 octet counting, cut and encoded;
//! - [`framing`]: what a stream input cuts with, told per connection;
//! - [`wire`]: what a stream output writes (delimited or octet-counted);
//! - [`relp`]: RELP frames, parsed and encoded;
//! - [`syslog`]: syslog messages as JSON objects and back;
//! - [`ndjson`]: HTTP bodies of one JSON document a line;
//! - [`object`]: a JSON object's top-level fields, edited as text;
//! - [`logfmt`] and [`csv`]: text parsed into such objects;
//! - [`multiline`]: lines joined into one event (stack traces);
//! - [`websocket`]: what a client's frames cost on the wire.
//!
//! Nothing here does I/O.

pub mod csv;
pub mod framing;
pub mod lines;
pub mod logfmt;
pub mod multiline;
pub mod ndjson;
pub mod object;
pub mod octet_counted;
pub mod relp;
mod scan;
pub mod syslog;
pub mod websocket;
pub mod wire;
