//! The write-ahead buffer's arguments: what its plain logic (retention,
//! the log, the writer) is configured with, below the module that reads
//! them.

use std::path::PathBuf;

use serde::Deserialize;
use wishbone_runtime::resend::{self, ResendArguments};

/// What a new event does when the buffer is full.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The oldest events not yet sent make room.
    #[default]
    DropOldest,
    /// The new event is dropped.
    DropNewest,
    /// The inbox waits until deliveries make room.
    Block,
}

/// What "kept" means for a log on disk.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Fsynced before anything is passed on or acknowledged.
    #[default]
    Batch,
    /// Written at once, fsynced on a timer.
    Interval,
    /// Written at once, never fsynced.
    None,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Events in a block sent on, at most.
    #[serde(default = "default_read_count")]
    pub read_count: usize,
    /// Events kept in all.
    #[serde(default = "default_max_elements")]
    pub max_elements: usize,
    /// Payload bytes kept in all.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// What a new event does when a limit is reached.
    #[serde(default)]
    pub when_full: WhenFull,
    /// Where the log lives; none keeps events in memory only.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// What "kept" means with `path`.
    #[serde(default)]
    pub sync: SyncMode,
    /// With `path`: payload bytes of waiting blocks held in memory too.
    #[serde(default = "default_max_memory_bytes")]
    pub max_memory_bytes: usize,
    /// Between fsyncs with `sync: interval`.
    #[serde(default = "default_sync_interval_ms")]
    pub sync_interval_ms: u64,
    /// First pause before a failed block is sent again, seconds.
    #[serde(default = "resend::default_resend_initial")]
    pub resend_initial: f64,
    /// Longest such pause, seconds.
    #[serde(default = "resend::default_resend_max")]
    pub resend_max: f64,
}

fn default_read_count() -> usize {
    20
}

fn default_max_elements() -> usize {
    1000
}

fn default_max_bytes() -> usize {
    10 * 1024 * 1024
}

fn default_max_memory_bytes() -> usize {
    64 * 1024 * 1024
}

fn default_sync_interval_ms() -> u64 {
    1000
}

impl Config {
    /// A new segment file starts once one holds this many bytes.
    pub fn segment_bytes(&self) -> u64 {
        (self.max_bytes as u64 / 8).clamp(64 * 1024, 128 * 1024 * 1024)
    }

    /// The pauses before a failed block is sent again (checked at build:
    /// the defaults stand in for values that would not pass).
    pub fn resend_pauses(&self) -> (std::time::Duration, std::time::Duration) {
        self.resend_arguments().pauses_or_default()
    }

    pub(crate) fn resend_arguments(&self) -> ResendArguments {
        ResendArguments {
            resend_initial: self.resend_initial,
            resend_max: self.resend_max,
        }
    }

    /// The inbox waits while the log's files hold more than this.
    pub(crate) fn disk_bytes_limit(&self) -> u64 {
        let payload = self.max_bytes as u64;
        payload + payload / 4 + 2 * self.segment_bytes()
    }
}
