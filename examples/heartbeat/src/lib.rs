//! Two modules of one's own, written only against the public module API
//! (`wishbone-runtime`): an input that makes events, and a flow module
//! that decides where events go. `docs/writing-a-module.md`, sections 9
//! and 10, walks through them.

pub mod heartbeat;
pub mod sample;
