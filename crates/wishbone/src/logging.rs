//! Logs on standard error, never on standard output (which belongs to the
//! `wishbone.output.stdout` module): each line starts with a UTC timestamp
//! (RFC 3339, milliseconds). `debug` colours them at a terminal; `start`
//! writes plain text or, with `--log-format json`, one JSON object a line.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// How logs look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `2026-11-25T19:44:24.123Z  INFO message key=value`.
    Text,
    /// One JSON object a line: timestamp, level, message and fields.
    Json,
}

/// UTC wall-clock time, RFC 3339 with milliseconds.
struct Utc;

impl FormatTime for Utc {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        write!(
            writer,
            "{}",
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
        )
    }
}

/// The NATS client logs each failed attempt to connect (at ERROR, one a
/// retry) on top of the module's own line, which logs once per outage and
/// per change of reason. Its records show only when `--log-level` names it
/// (`info,async_nats=debug`).
const QUIET_LIBRARY: &str = "async_nats";

/// Installs the global subscriber; `colour` asks for ANSI colours when
/// standard error is a terminal.
pub fn init(level: &str, format: Format, colour: bool) -> anyhow::Result<()> {
    let mut filter = EnvFilter::try_new(level)
        .map_err(|error| anyhow::anyhow!("invalid --log-level `{level}`: {error}"))?;
    if !level.contains(QUIET_LIBRARY) {
        filter = filter.add_directive(format!("{QUIET_LIBRARY}=off").parse()?);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(Utc)
        .with_target(false);
    let result = match format {
        Format::Text => builder
            .with_ansi(colour && std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|error| anyhow::anyhow!("cannot set up logging: {error}"))
}
