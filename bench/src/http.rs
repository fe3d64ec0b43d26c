//! Inserting into ClickHouse over HTTP: the routing runs' JSON lines
//! through `tcp → wishbone.output.http` beside one `curl` process posting
//! the same NDJSON in batches of the same size, one after the other over
//! one connection. Each run ends when the table holds every row.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{cpu_seconds, peak_rss_mib};
use crate::proxy::{Proxy, free_port};
use crate::throughput::{Figures, send_file};

/// Rows in one request, for both.
const BATCH: usize = 1000;

/// A ClickHouse server with its data in a directory of its own.
struct ClickHouse {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl ClickHouse {
    /// A server with its files in `dir`, or in memory (`/dev/shm`) where
    /// there is one: each insert writes a part of several files, and a
    /// virtual machine's disk budget would otherwise set the pace of
    /// whichever run comes later.
    fn start(dir: &Path) -> anyhow::Result<ClickHouse> {
        let shm = Path::new("/dev/shm");
        let dir = match (shm.is_dir(), dir.file_name()) {
            (true, Some(name)) => shm.join(format!(
                "wishbone-bench-{}-{}",
                std::process::id(),
                name.to_string_lossy()
            )),
            _ => dir.to_path_buf(),
        };
        let dir = dir.as_path();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("data"))?;
        let port = free_port()?;
        let config = dir.join("config.xml");
        std::fs::write(
            &config,
            format!(
                "<yandex><logger><level>error</level><console>1</console></logger>\
                 <http_port>{port}</http_port><tcp_port>{}</tcp_port><listen_host>127.0.0.1</listen_host>\
                 <path>{dir}/data/</path><tmp_path>{dir}/tmp/</tmp_path>\
                 <users_config>/etc/clickhouse-server/users.xml</users_config>\
                 <default_profile>default</default_profile><default_database>default</default_database>\
                 <mark_cache_size>536870912</mark_cache_size></yandex>",
                free_port()?,
                dir = dir.display()
            ),
        )?;
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot run clickhouse-server (apt-get install clickhouse-server): {error}"
                )
            })?;
        let clickhouse = ClickHouse {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while clickhouse.query("SELECT 1").is_err() {
            anyhow::ensure!(Instant::now() < deadline, "ClickHouse did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(clickhouse)
    }

    /// A statement's answer, through `curl`.
    fn query(&self, statement: &str) -> anyhow::Result<String> {
        let output = Command::new("curl")
            .args(["-sf", "--data-binary", statement])
            .arg(format!("http://127.0.0.1:{}/", self.port))
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "{statement}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn insert_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?query=INSERT%20INTO%20logs%20FORMAT%20JSONEachRow",
            self.port
        )
    }

    /// Empties the table for the next run.
    fn fresh_table(&self) -> anyhow::Result<()> {
        self.query("DROP TABLE IF EXISTS logs")?;
        self.query("CREATE TABLE logs (id UInt64, level String, service String, message String) ENGINE = MergeTree ORDER BY id")?;
        Ok(())
    }

    /// Waits until the table holds `rows` rows; false after 60 s without.
    fn wait_for(&self, rows: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self
                .query("SELECT count() FROM logs")
                .ok()
                .and_then(|count| count.parse().ok())
                == Some(rows)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The JSON lines cut into files of [`BATCH`] rows, for curl.
fn batches(data: &Path, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read(data)?;
    let lines: Vec<&[u8]> = text.split_inclusive(|byte| *byte == b'\n').collect();
    let mut paths = Vec::new();
    for (index, chunk) in lines.chunks(BATCH).enumerate() {
        let path = dir.join(format!("batch-{index:05}.ndjson"));
        std::fs::write(&path, chunk.concat())?;
        paths.push(path);
    }
    Ok(paths)
}

/// The JSON lines with a line that is not JSON after every `every`th, as
/// `bad.ndjson` in `dir`.
fn with_bad_rows(data: &Path, dir: &Path, every: usize) -> anyhow::Result<PathBuf> {
    let text = std::fs::read(data)?;
    let mut out = Vec::with_capacity(text.len() + text.len() / every);
    for (index, line) in text.split_inclusive(|byte| *byte == b'\n').enumerate() {
        out.extend_from_slice(line);
        if (index + 1) % every == 0 {
            out.extend_from_slice(format!("not json {index}\n").as_bytes());
        }
    }
    let path = dir.join("bad.ndjson");
    std::fs::write(&path, out)?;
    Ok(path)
}

/// `data` (whose valid lines are `rows`) through `tcp → http output →
/// ClickHouse`, bad lines dropped from `failed`, timed until the table
/// holds every valid row.
fn through_wishbone(
    name: &str,
    wishbone: &Path,
    clickhouse: &ClickHouse,
    dir: &Path,
    data: &Path,
    rows: usize,
) -> anyhow::Result<Figures> {
    clickhouse.fresh_table()?;
    std::fs::create_dir_all(dir)?;
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.http, arguments: {{url: \"{}\", batch_max_events: {BATCH}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n",
        clickhouse.insert_url()
    );
    let proxy = Proxy::wishbone(wishbone, dir, &bootstrap, &[])?;
    let begun = Instant::now();
    let (file, port) = (data.to_path_buf(), proxy.input_port);
    let sender = std::thread::spawn(move || send_file(&file, port));
    let arrived = clickhouse.wait_for(rows);
    let wall = begun.elapsed().as_secs_f64();
    let (cpu, rss) = (cpu_seconds(proxy.pid()), peak_rss_mib(proxy.pid()));
    proxy.stop();
    let _ = sender.join();
    let problem = (!arrived).then(|| "not every row arrived".to_string());
    Ok(Figures::of(name, problem, rows as u64, wall, cpu, rss))
}

/// The name of the measurement of [`isolation_times`], for `--leave-out`.
pub const ISOLATING: &str = "http, isolating a bad row";

/// [`time_to_isolate`] five times, shortest first.
pub fn isolation_times(wishbone: &Path, scratch: &Path) -> anyhow::Result<Vec<Duration>> {
    eprintln!("{ISOLATING}: 5 batches of {BATCH} rows with one bad");
    let mut times = (0..5)
        .map(|_| time_to_isolate(wishbone, scratch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    times.sort();
    Ok(times)
}

/// Prints what [`isolation_times`] measured.
pub fn print_isolation(times: &[Duration]) {
    let ms: Vec<String> = times
        .iter()
        .map(|took| format!("{:.1}", took.as_secs_f64() * 1000.0))
        .collect();
    println!(
        "\nfrom sending a batch of {BATCH} rows with one bad row (the HTTP output connected, ClickHouse answering at once) to the bad row on `failed`: median {} ms (all: {} ms)",
        ms[ms.len() / 2],
        ms.join(", ")
    );
}

/// How long one bad row among `BATCH` takes to be isolated: from sending
/// the batch (the output already connected) until the bad line arrives on
/// `failed`, routed to a listener here; ClickHouse answers at once.
fn time_to_isolate(wishbone: &Path, scratch: &Path) -> anyhow::Result<Duration> {
    use std::io::{BufRead, BufReader, Write};
    let clickhouse = ClickHouse::start(&scratch.join("clickhouse-isolate"))?;
    clickhouse.fresh_table()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let failed_port = listener.local_addr()?.port();
    let dir = scratch.join("http-isolate");
    std::fs::create_dir_all(&dir)?;
    let bootstrap = format!(
        "modules:\n  input: {{module: wishbone.input.tcp, arguments: {{address: 127.0.0.1, port: 0}}}}\n  \
         output: {{module: wishbone.output.http, arguments: {{url: \"{}\", batch_max_events: {BATCH}}}}}\n  \
         failed: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {failed_port}}}}}\n\
         routingtable:\n  - input.outbox -> output.inbox\n  - output.failed -> failed.inbox\n",
        clickhouse.insert_url()
    );
    let proxy = Proxy::wishbone(wishbone, &dir, &bootstrap, &[])?;
    let row = |id: usize| {
        format!("{{\"id\":{id},\"level\":\"info\",\"service\":\"s\",\"message\":\"m\"}}\n")
    };
    let mut input = std::net::TcpStream::connect(("127.0.0.1", proxy.input_port))?;
    input.write_all(row(0).as_bytes())?;
    anyhow::ensure!(clickhouse.wait_for(1), "the first row did not arrive");
    let batch: String = (1..BATCH)
        .map(|id| match id {
            500 => format!("not json\n{}", row(id)),
            _ => row(id),
        })
        .collect();
    let begun = Instant::now();
    input.write_all(batch.as_bytes())?;
    let (failed, _) = listener.accept()?;
    let mut line = String::new();
    BufReader::new(failed).read_line(&mut line)?;
    let took = begun.elapsed();
    anyhow::ensure!(line == "not json\n", "failed got {line:?}");
    anyhow::ensure!(clickhouse.wait_for(BATCH), "the good rows did not arrive");
    proxy.stop();
    Ok(took)
}

/// One repetition of the runs, if `wanted` leaves them in.
pub fn run_all(
    wishbone: &Path,
    scratch: &Path,
    data: &Path,
    rows: usize,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Figures>> {
    let names = [
        "http, wishbone tcp → http output → ClickHouse",
        "http, curl --data-binary → ClickHouse",
        "http, wishbone, 1 bad row in 10,000",
    ];
    if !names.iter().any(|name| wanted(name)) {
        return Ok(Vec::new());
    }
    let clickhouse = ClickHouse::start(&scratch.join("clickhouse"))?;
    let mut runs = Vec::new();
    if wanted(names[0]) {
        let dir = scratch.join("http-output");
        runs.push(through_wishbone(
            names[0],
            wishbone,
            &clickhouse,
            &dir,
            data,
            rows,
        )?);
    }
    if wanted(names[2]) {
        let dir = scratch.join("http-bad-rows");
        std::fs::create_dir_all(&dir)?;
        let bad = with_bad_rows(data, &dir, 10_000)?;
        runs.push(through_wishbone(
            names[2],
            wishbone,
            &clickhouse,
            &dir,
            &bad,
            rows,
        )?);
    }
    if wanted(names[1]) {
        clickhouse.fresh_table()?;
        let dir = scratch.join("http-curl");
        std::fs::create_dir_all(&dir)?;
        let files = batches(data, &dir)?;
        let mut command = Command::new("curl");
        command.args(["-sf", "-o", "/dev/null"]);
        for (index, file) in files.iter().enumerate() {
            if index > 0 {
                command.arg("--next").args(["-sf", "-o", "/dev/null"]);
            }
            command
                .arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .arg(clickhouse.insert_url());
        }
        let begun = Instant::now();
        let child = command.stdout(Stdio::null()).spawn()?;
        let pid = child.id();
        let mut child = child;
        let mut cpu = 0.0f64;
        let status = loop {
            cpu = cpu.max(cpu_seconds(pid));
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let arrived = clickhouse.wait_for(rows);
        let wall = begun.elapsed().as_secs_f64();
        let problem = match (status.success(), arrived) {
            (true, true) => None,
            _ => Some(format!("curl: {status}; every row: {arrived}")),
        };
        runs.push(Figures::of(names[1], problem, rows as u64, wall, cpu, 0.0));
    }
    Ok(runs)
}
