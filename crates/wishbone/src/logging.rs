//! Logs on standard output: coloured and terse for `debug` at a terminal,
//! plain with timestamps for `start`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How logs look.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Human,
    Service,
}

pub fn init(level: &str, style: Style) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(level)
        .map_err(|error| anyhow::anyhow!("invalid --log-level `{level}`: {error}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = match style {
        Style::Human => builder
            .with_ansi(std::io::stdout().is_terminal())
            .with_target(false)
            .without_time()
            .try_init(),
        Style::Service => builder.with_ansi(false).with_target(false).try_init(),
    };
    result.map_err(|error| anyhow::anyhow!("cannot set up logging: {error}"))
}
