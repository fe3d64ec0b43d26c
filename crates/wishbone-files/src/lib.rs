//! wishbone's modules of files, apart from the other builtins because
//! following files (rotation, truncation, checkpoints, watching
//! directories) and writing many of them (templates, open files, rotation
//! noticed) is a subject of its own:
//!
//! - [`input`]: `wishbone.input.file` tails the files matching glob
//!   patterns, one event per line, and checkpoints per file only what was
//!   delivered downstream;
//! - [`output`]: `wishbone.output.file` appends events to files named from
//!   their fields, on the one output pump of `wishbone-output`.

pub mod input;
pub mod output;
