use std::sync::Arc;
use std::time::Duration;

/// Settings of a whole server, from the command line.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Capacity of every queue, in events (`--queue-size`).
    pub queue_size: usize,
    /// How often metrics modules report (`--frequency`).
    pub frequency: Duration,
    /// How long a stop waits for queues to drain into outputs before it
    /// aborts and reports what was left undelivered.
    pub drain_timeout: Duration,
    /// Listening sockets bound by the launcher of `--instances`, which the
    /// inputs use instead of binding their own.
    pub listeners: crate::InheritedListeners,
    /// The host name metrics and enrichment modules report.
    pub hostname: String,
    /// What the installed `metrics` recorder holds, for the metrics modules
    /// to report as events; `None` when no recorder was installed.
    pub metrics: Option<Arc<dyn RecordedMetrics>>,
    /// Which of `start --instances N` this process is, from 0 (0 when it
    /// runs alone): a module that serves its own port per instance adds it.
    pub instance: usize,
    /// What the modules say of their readiness, for `/ready`.
    pub readiness: crate::Readiness,
    /// How many threads run the modules (`--threads`): 1 runs them on the
    /// server's own thread; more runs each pipeline (and each CPU-bound
    /// module) on one of that many threads of their own, so that the
    /// server's thread (signals, stop, reload) never waits for a busy
    /// module.
    pub threads: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            queue_size: 1000,
            frequency: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            listeners: crate::InheritedListeners::default(),
            hostname: "localhost".to_string(),
            metrics: None,
            instance: 0,
            readiness: crate::Readiness::default(),
            threads: 1,
        }
    }
}

/// The values the `metrics` recorder installed by the command holds. The
/// runtime only records through the `metrics` facade; this is how a module
/// such as `wishbone.metrics.graphite` reads them back without the runtime
/// knowing which recorder it is.
pub trait RecordedMetrics: std::fmt::Debug + Send + Sync {
    /// Every value recorded so far, one `<prefix>.<path> <value> <now>`
    /// line each: the plaintext form metrics stores read.
    fn lines(&self, prefix: &str, now: u64) -> Vec<String>;

    /// The value of every counter and gauge now, by path (`module.<name>.<counter>`),
    /// without the prefix; histograms are left for the reports to summarise.
    fn values(&self) -> Vec<RecordedValue>;

    /// Stops reporting the metrics of a module a reload removed
    /// (`module.<name>.*`, `queue.<name>.*`). By default nothing is
    /// forgotten.
    fn forget_module(&self, _module: &str) {}
}

/// One counter's or gauge's value, as [`RecordedMetrics::values`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedValue {
    /// `module.<name>.<counter>`, `queue.<module>.<queue>.<stat>`, ...
    pub path: String,
    /// Its value now.
    pub value: f64,
    /// A counter (a total that only grows, so it has a rate), not a gauge.
    pub counter: bool,
}
