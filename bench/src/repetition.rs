//! One repetition of the throughput runs, a group of configurations at a
//! time: the scenarios and socat, the write-ahead buffer's demo, disks, RELP
//! hops, wishbone-to-wishbone hops, and the runs of other modules (files,
//! routing, HTTP, NATS).

use std::path::Path;

use crate::data::Fingerprint;
use crate::proxy::{self, Proxy};
use crate::throughput::{self, Figures, Receivers};
use crate::{
    BASELINE, NatsRun, Options, files, http, nats, routing, scenarios, scraper, tls_files,
};

/// Scenario II with the operator listener on, a 1% tap on `input.outbox`
/// reading what it sends.
fn tapped_round_robin(wishbone: &Path, scratch: &Path, ports: &[u16]) -> anyhow::Result<Proxy> {
    let bootstrap = scenarios::round_robin(ports, false);
    let admin = proxy::free_port()?;
    let address = format!("127.0.0.1:{admin}");
    let proxy = Proxy::wishbone(wishbone, scratch, &bootstrap, &["--admin", &address])?;
    scraper::tap(admin, "input.outbox", 0.01)?;
    Ok(proxy)
}

/// Scenario II with the Prometheus module, its page scraped every
/// [`scraper::EVERY`].
fn scraped_round_robin(wishbone: &Path, scratch: &Path, ports: &[u16]) -> anyhow::Result<Proxy> {
    let metrics = proxy::free_port()?;
    let bootstrap = scenarios::round_robin(ports, false).replace(
        "routingtable:",
        &format!("  prometheus: {{module: wishbone.metrics.prometheus, arguments: {{port: {metrics}}}}}\nroutingtable:"),
    );
    let proxy = Proxy::wishbone(wishbone, scratch, &bootstrap, &[])?;
    scraper::start(metrics);
    Ok(proxy)
}

/// What every run of a repetition reads.
#[derive(Clone, Copy)]
pub struct Repetition<'a> {
    pub options: &'a Options,
    pub scratch: &'a Path,
    pub wishbone: &'a Path,
    pub expected: Fingerprint,
    pub buffered_expected: Fingerprint,
    pub relp_expected: Fingerprint,
    pub routing_inputs: &'a routing::Inputs<'a>,
}

impl Repetition<'_> {
    /// Every configuration `--only` and `--leave-out` leave in, once.
    pub fn run(&self) -> anyhow::Result<Vec<Figures>> {
        let mut runs = Vec::new();
        self.scenarios(&mut runs)?;
        self.buffered(&mut runs)?;
        self.disks(&mut runs)?;
        self.relp_hops(&mut runs)?;
        self.wishbone_hops(&mut runs)?;
        self.other_modules(&mut runs)?;
        Ok(runs)
    }

    /// socat and the scenarios, on the main data.
    fn scenarios(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, scratch, &bootstrap, &[]);
        let (data, expected) = (options.data.as_path(), self.expected);
        type Start<'a> = Box<dyn Fn(&[u16]) -> anyhow::Result<Proxy> + 'a>;
        let configurations: [(&str, usize, Start); 9] = [
            (
                "socat hop, 8 KiB blocks",
                1,
                Box::new(|ports| Proxy::socat(8192, ports[0])),
            ),
            (
                "socat hop, 128 KiB blocks",
                1,
                Box::new(|ports| Proxy::socat(131072, ports[0])),
            ),
            (
                "wishbone scenario I",
                1,
                Box::new(|ports| wishbone_on(scenarios::proxy(ports[0]))),
            ),
            (
                "wishbone scenario II",
                2,
                Box::new(|ports| wishbone_on(scenarios::round_robin(ports, false))),
            ),
            (
                "wishbone scenario II, --graph",
                2,
                Box::new(|ports| {
                    let bootstrap = scenarios::round_robin(ports, false);
                    Proxy::wishbone(wishbone, scratch, &bootstrap, &["--graph", "127.0.0.1:0"])
                }),
            ),
            (
                "wishbone scenario II, --admin, a 1% tap on input.outbox",
                2,
                Box::new(|ports| tapped_round_robin(wishbone, scratch, ports)),
            ),
            (
                "wishbone scenario II, Prometheus page scraped every 10 ms",
                2,
                Box::new(|ports| scraped_round_robin(wishbone, scratch, ports)),
            ),
            (
                "wishbone scenario II, 3 backends",
                3,
                Box::new(|ports| wishbone_on(scenarios::round_robin(ports, false))),
            ),
            (
                "wishbone scenario II, metrics to absent carbon",
                2,
                // Metrics for a carbon that does not exist can never drain:
                // the stop would wait the whole default drain timeout.
                Box::new(|ports| {
                    let bootstrap = scenarios::round_robin(ports, true);
                    Proxy::wishbone(wishbone, scratch, &bootstrap, &["--drain-timeout", "1"])
                }),
            ),
        ];
        for (name, receivers, start) in configurations {
            let wanted = name == BASELINE || !options.leaves_out(name);
            if wanted {
                runs.push(throughput::run(
                    name,
                    Receivers::Tcp(receivers),
                    data,
                    expected,
                    start,
                )?);
            }
        }
        Ok(())
    }

    /// The write-ahead buffer's demo and its peers.
    fn buffered(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, scratch, &bootstrap, &[]);
        // The seed's demo with a write-ahead buffer, on fewer lines: with
        // 20 events in flight, each must be acknowledged before more go.
        let buffered: [(&str, Receivers, Option<usize>); 6] = [
            (
                "wal read_count 20, 3 websocket outputs",
                Receivers::Websocket(3),
                Some(20),
            ),
            (
                "wal read_count 20, 2 tcp outputs",
                Receivers::Tcp(2),
                Some(20),
            ),
            (
                "wal read_count 1000, 2 tcp outputs",
                Receivers::Tcp(2),
                Some(1000),
            ),
            (
                "wal read_count 10000, 2 tcp outputs",
                Receivers::Tcp(2),
                Some(10000),
            ),
            ("no wal, 2 tcp outputs", Receivers::Tcp(2), None),
            ("no wal, 3 websocket outputs", Receivers::Websocket(3), None),
        ];
        for (name, receivers, read_count) in buffered {
            if options.buffered_lines == 0 || options.leaves_out(name) {
                continue;
            }
            let websocket = matches!(receivers, Receivers::Websocket(_));
            runs.push(throughput::run(
                name,
                receivers,
                &options.buffered_data,
                self.buffered_expected,
                |ports| wishbone_on(scenarios::buffered(ports, read_count, websocket)),
            )?);
        }
        Ok(())
    }

    /// Every event through a disk.
    fn disks(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, scratch, &bootstrap, &[]);
        // Every event through a disk, on the same lines: the wal with
        // `path`, and rsyslog's disk queues.
        let disk: [(&str, &str); 5] = [
            ("wal on disk, sync batch", "batch"),
            ("wal on disk, sync none", "none"),
            (
                "rsyslog, disk queue",
                "queue.type=\"Disk\" queue.filename=\"bench\" queue.maxDiskSpace=\"2g\"",
            ),
            (
                "rsyslog, disk queue fsynced",
                "queue.type=\"Disk\" queue.filename=\"bench\" queue.maxDiskSpace=\"2g\" queue.syncQueueFiles=\"on\"",
            ),
            (
                "rsyslog, disk-assisted memory queue",
                "queue.type=\"LinkedList\" queue.size=\"100000\" queue.filename=\"bench\"",
            ),
        ];
        for (name, setting) in disk {
            // rsyslog fsyncing its disk queue takes about 7,000 lines a
            // second: 3,000,000 lines would take minutes. Measured when named.
            let named = options.only.as_deref() == Some(name);
            if options.buffered_lines == 0
                || options.leaves_out(name)
                || (name.ends_with("fsynced") && !named)
            {
                continue;
            }
            let dir = scratch.join(name.replace([' ', ','], "-"));
            runs.push(throughput::run(
                name,
                Receivers::Tcp(1),
                &options.buffered_data,
                self.buffered_expected,
                |ports| {
                    if name.starts_with("rsyslog") {
                        return Proxy::rsyslog(&dir, ports[0], setting);
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                    wishbone_on(scenarios::on_disk(
                        ports[0],
                        &dir,
                        options.disk_read_count,
                        setting,
                    ))
                },
            )?);
        }
        Ok(())
    }

    /// RELP hops: wishbone's and rsyslog's.
    fn relp_hops(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, scratch, &bootstrap, &[]);
        // A RELP hop: a client taking lines over TCP and sending them as
        // RELP frames to a server, which sends them on over TCP.
        for name in ["RELP hop, wishbone", "RELP hop, rsyslog"] {
            if options.relp_lines == 0 || options.leaves_out(name) {
                continue;
            }
            runs.push(throughput::run(
                name,
                Receivers::Tcp(1),
                &options.relp_data,
                self.relp_expected,
                |ports| {
                    let relp_port = proxy::free_port()?;
                    if name.ends_with("rsyslog") {
                        let (client, server) =
                            (scratch.join("relp-client"), scratch.join("relp-server"));
                        let server = Proxy::rsyslog_with(
                            &server,
                            relp_port,
                            &scenarios::rsyslog_relp_server(&server, relp_port, ports[0]),
                        )?;
                        let input = proxy::free_port()?;
                        let client = Proxy::rsyslog_with(
                            &client,
                            input,
                            &scenarios::rsyslog_relp_client(&client, input, relp_port),
                        )?;
                        return Ok(Proxy::hop(client, server));
                    }
                    let server_dir = scratch.join("relp-server");
                    std::fs::create_dir_all(&server_dir)?;
                    let server = Proxy::wishbone(
                        wishbone,
                        &server_dir,
                        &scenarios::relp_server(relp_port, ports[0]),
                        &[],
                    )?;
                    let client = wishbone_on(scenarios::relp_client(relp_port))?;
                    Ok(Proxy::hop(client, server))
                },
            )?);
        }
        Ok(())
    }

    /// Two wishbones in a row, plain and under TLS.
    fn wishbone_hops(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let wishbone_on = |bootstrap: String| Proxy::wishbone(wishbone, scratch, &bootstrap, &[]);
        let (data, expected) = (options.data.as_path(), self.expected);
        // Scenario I as a hop between two wishbones, in plain TCP and in
        // TLS (the first's output to the second's input).
        for (name, tls) in [
            ("wishbone hop, plain TCP", false),
            ("wishbone hop, TLS", true),
        ] {
            if options.leaves_out(name) {
                continue;
            }
            let certificates = if tls { Some(tls_files(scratch)?) } else { None };
            runs.push(throughput::run(
                name,
                Receivers::Tcp(1),
                data,
                expected,
                |ports| {
                    let (server_side, client_side) = match &certificates {
                        Some((server, client)) => (Some(server.as_str()), Some(client.as_str())),
                        None => (None, None),
                    };
                    let second_dir = scratch.join("hop-second");
                    std::fs::create_dir_all(&second_dir)?;
                    let second = Proxy::wishbone(
                        wishbone,
                        &second_dir,
                        &scenarios::hop_side(ports[0], server_side, None),
                        &[],
                    )?;
                    let first =
                        wishbone_on(scenarios::hop_side(second.input_port, None, client_side))?;
                    Ok(Proxy::hop(first, second))
                },
            )?);
        }
        Ok(())
    }

    /// The file input, routing, HTTP and NATS runs.
    fn other_modules(&self, runs: &mut Vec<Figures>) -> anyhow::Result<()> {
        let Repetition {
            options,
            scratch,
            wishbone,
            ..
        } = *self;
        let (data, expected) = (options.data.as_path(), self.expected);
        runs.extend(files::run_all(wishbone, scratch, data, expected, |name| {
            !options.leaves_out(name)
        })?);
        if options.json_lines > 0 {
            runs.extend(routing::run_all(self.routing_inputs, |name| {
                !options.leaves_out(name)
            })?);
            runs.extend(crate::reshaping::run_all(self.routing_inputs, |name| {
                !options.leaves_out(name)
            })?);
            runs.extend(http::run_all(
                wishbone,
                scratch,
                &options.json_data,
                options.json_lines,
                |name| !options.leaves_out(name),
            )?);
        }

        // NATS JetStream, one node fsyncing every write: wishbone's output
        // and input beside a plain client with the same bound in flight.
        if options.nats_messages > 0 {
            let payloads = nats::payloads(&options.nats_data)?;
            let runs_of: [(&str, NatsRun); 4] = [
                ("nats publish, wishbone", &|| {
                    nats::publish_wishbone(wishbone, scratch, &options.nats_data, payloads.len())
                }),
                ("nats publish, plain async-nats client", &|| {
                    nats::publish_plain(scratch, &payloads)
                }),
                ("nats consume, wishbone to null", &|| {
                    nats::consume_wishbone(wishbone, scratch, &payloads)
                }),
                ("nats consume, plain async-nats client", &|| {
                    nats::consume_plain(scratch, &payloads)
                }),
            ];
            for (name, run) in runs_of {
                if !options.leaves_out(name) {
                    eprintln!("{name}");
                    runs.push(run()?);
                }
            }
        }
        Ok(())
    }
}
