use std::time::Duration;

use crate::recorder::{GraphiteHandle, GraphiteRecorder, pair};
use crate::render::{LabelStyle, Summary};

/// Settings of a Graphite exporter.
#[derive(Clone, Debug)]
pub struct GraphiteBuilder {
    address: Option<String>,
    prefix: String,
    interval: Duration,
    labels: LabelStyle,
    summaries: Vec<Summary>,
    buffer_lines: usize,
    timeout: Duration,
}

/// The global recorder was already set.
#[derive(Debug, thiserror::Error)]
#[error("a metrics recorder is already installed")]
pub struct InstallError;

impl Default for GraphiteBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphiteBuilder {
    /// No address (render only), no prefix, every 10 s, label values as
    /// segments, histograms as count/min/max/mean/p50/p90/p99, 100,000
    /// lines buffered while carbon is away.
    pub fn new() -> Self {
        Self {
            address: None,
            prefix: String::new(),
            interval: Duration::from_secs(10),
            labels: LabelStyle::Segments,
            summaries: vec![
                Summary::Count,
                Summary::Min,
                Summary::Max,
                Summary::Mean,
                Summary::Percentile(50.0),
                Summary::Percentile(90.0),
                Summary::Percentile(99.0),
            ],
            buffer_lines: 100_000,
            timeout: Duration::from_secs(2),
        }
    }

    /// Carbon's plaintext listener, `host:port` (port 2003 by convention).
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Put before every path, such as `myapp.web-01`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often values are written.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How labels become part of a path.
    pub fn with_label_style(mut self, labels: LabelStyle) -> Self {
        self.labels = labels;
        self
    }

    /// Which summaries of each histogram to write.
    pub fn with_summaries(mut self, summaries: Vec<Summary>) -> Self {
        self.summaries = summaries;
        self
    }

    /// How many lines wait while carbon is away before the oldest are dropped.
    pub fn with_buffer_lines(mut self, lines: usize) -> Self {
        self.buffer_lines = lines;
        self
    }

    /// How long a connect or a write to carbon may take before carbon
    /// counts as down and the connection is reset (2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// What the pushing thread needs, if an address was given.
    fn push_settings(&self) -> Option<crate::pusher::Settings> {
        Some(crate::pusher::Settings {
            address: self.address.clone()?,
            interval: self.interval,
            buffer_lines: self.buffer_lines,
            timeout: self.timeout,
        })
    }

    /// A recorder and its handle, nothing installed and no thread started.
    pub fn build(self) -> (GraphiteRecorder, GraphiteHandle) {
        pair(self.prefix, self.labels, self.summaries)
    }

    /// Builds, starts the pushing thread if an address was given, and
    /// installs the recorder as the global one.
    pub fn install(self) -> Result<GraphiteHandle, InstallError> {
        let settings = self.push_settings();
        let (recorder, handle) = self.build();
        metrics::set_global_recorder(recorder).map_err(|_| InstallError)?;
        if let Some(settings) = settings {
            crate::pusher::spawn(handle.clone(), settings);
        }
        Ok(handle)
    }

    /// Builds and starts the pushing thread without installing the recorder
    /// globally (to record through `metrics::with_local_recorder`, or tests).
    pub fn build_and_push(self) -> (GraphiteRecorder, GraphiteHandle) {
        let settings = self.push_settings();
        let (recorder, handle) = self.build();
        if let Some(settings) = settings {
            crate::pusher::spawn(handle.clone(), settings);
        }
        (recorder, handle)
    }
}
