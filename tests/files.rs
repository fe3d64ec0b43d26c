//! `wishbone.input.file` with real tools on real files: Debian's logrotate
//! rotating under a writer while wishbone is SIGKILLed and restarted,
//! copytruncate, a reused inode, a partial last line finished after a
//! restart, a thousand files and a 100 MB line. Lines go to the harness's
//! tcp sink, where every number is counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wishbone_e2e::*;

const MINUTE: Duration = Duration::from_secs(60);

/// File input on `patterns` → tcp output to `sink`.
fn bootstrap(patterns: &[PathBuf], checkpoints: &Path, sink: u16, more: &str) -> String {
    let patterns: Vec<String> = patterns
        .iter()
        .map(|pattern| format!("\"{}\"", pattern.display()))
        .collect();
    format!(
        "modules:\n  files: {{module: wishbone.input.file, arguments: {{paths: [{}], checkpoints: \"{}\", poll_interval_ms: 100{more}}}}}\n  \
         output: {{module: wishbone.output.tcp, arguments: {{host: 127.0.0.1, port: {sink}, reconnect_max: 0.2}}}}\n\
         routingtable:\n  - files.outbox -> output.inbox\n",
        patterns.join(", "),
        checkpoints.display()
    )
}

/// How many times each number arrived.
fn arrivals(sink: &Sink) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for number in line_numbers(&sink.received()) {
        *counts.entry(number).or_default() += 1;
    }
    counts
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|byte| *byte == b'\n').collect()
}

fn append(path: &Path, data: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(data).unwrap();
}

fn wait_for_numbers(sink: &Sink, count: usize, limit: Duration) {
    wait_until(
        limit,
        &format!("{count} distinct lines at the sink"),
        || arrivals(sink).len() >= count,
    );
}

fn exactly_once(sink: &Sink, count: usize) {
    let counts = arrivals(sink);
    let twice: Vec<_> = counts
        .iter()
        .filter(|(_, times)| **times > 1)
        .take(5)
        .collect();
    assert!(twice.is_empty(), "arrived more than once: {twice:?}");
    assert_eq!(counts.len(), count);
    assert_eq!(counts.keys().next_back(), Some(&(count - 1)));
}

#[test]
fn logrotate_under_a_writer_and_two_sigkills_lose_no_line() {
    require_installed(
        "command -v logrotate",
        "logrotate is missing: `apt-get install logrotate`, which scripts/test does",
    );
    let dir = scratch_dir("files-logrotate");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        &[logs.join("app.log*")],
        &dir.join("checkpoints"),
        sink.port,
        "",
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    rotation::logrotate_config(&dir, &app);
    const LINES: usize = 160_000;
    const RATE: f64 = 20_000.0;
    let data = numbered_lines(LINES);
    let items = lines(&data).into_iter().map(<[u8]>::to_vec).collect();
    let writer = rotation::writer(app.clone(), items, RATE, 100);
    let turbulence = rotation::Turbulence {
        rotate_every: 2.0,
        kill_every: 3.0,
        kills: 2,
    };
    let (rotations, kills) = turbulence.run(&writer, &dir, &config, &mut wishbone);
    writer.join().unwrap();
    assert!(
        rotations >= 3 && kills == 2,
        "rotations {rotations}, kills {kills}"
    );
    wait_for_numbers(&sink, LINES, MINUTE);
    assert!(wishbone.stop().success());
    let counts = arrivals(&sink);
    assert_eq!(counts.len(), LINES, "every line arrived");
    let duplicates: usize = counts.values().map(|times| times - 1).sum();
    eprintln!("{LINES} lines, {rotations} rotations, {kills} SIGKILLs: {duplicates} duplicates");
    // What a kill repeats is what was delivered after the last checkpoint
    // write (once a second): at 20,000 lines a second, and faster while
    // catching up after a restart.
    assert!(duplicates <= kills * 40_000, "{duplicates} duplicates");
}

#[test]
fn progress_after_each_restart_is_checkpointed_at_once() {
    // Killed half a second after its lines arrived, three times: each
    // start writes its first progress at once, so no line comes twice.
    let dir = scratch_dir("files-kill-early");
    let path = dir.join("app.log");
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        std::slice::from_ref(&path),
        &dir.join("checkpoints"),
        sink.port,
        "",
    );
    const ROUND: usize = 1_000;
    let data = numbered_lines(3 * ROUND);
    let length = data.len() / 3;
    for round in 0..3 {
        let mut wishbone = Wishbone::start(&dir, &config, &[]);
        append(&path, &data[round * length..(round + 1) * length]);
        wait_for_numbers(&sink, (round + 1) * ROUND, MINUTE);
        std::thread::sleep(Duration::from_millis(500));
        wishbone.signal(libc::SIGKILL);
        wishbone.wait(MINUTE);
    }
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 3 * ROUND);
}

#[test]
fn copytruncate_with_a_paused_writer_is_read_again_from_the_start() {
    let dir = scratch_dir("files-copytruncate");
    let app = dir.join("app.log");
    let sink = Sink::start(&dir, "receiver");
    // The copies are not read: they hold what was read already.
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap(
            std::slice::from_ref(&app),
            &dir.join("checkpoints"),
            sink.port,
            "",
        ),
        &[],
    );
    let data = numbered_lines(3_000);
    let all = lines(&data);
    append(&app, &all[..2_000].concat());
    wait_for_numbers(&sink, 2_000, MINUTE);
    std::fs::copy(&app, dir.join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&app)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append(&app, &all[2_000..].concat());
    wait_for_numbers(&sink, 3_000, MINUTE);
    assert!(wishbone.stop().success());
    exactly_once(&sink, 3_000);
}

/// Whether process `pid` has `path` open.
fn holds_open(pid: u32, path: &Path) -> bool {
    let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    descriptors.flatten().any(|descriptor| {
        std::fs::read_link(descriptor.path()).is_ok_and(|target| {
            target
                .to_string_lossy()
                .starts_with(&*path.to_string_lossy())
        })
    })
}

#[test]
fn a_new_file_on_a_reused_inode_is_read_from_its_start() {
    let dir = scratch_dir("files-inode");
    // A file system of its own: no other writer takes the freed inode.
    let disk = match SmallDisk::mount_ext4(&dir, 16) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount an ext4 image ({why}); this test needs root");
            return;
        }
    };
    let logs = disk.0.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        &[logs.join("*.log")],
        &dir.join("checkpoints"),
        sink.port,
        "",
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    let data = numbered_lines(2_000);
    let all = lines(&data);
    let path = logs.join("a.log");
    append(&path, &all[..1_000].concat());
    wait_for_numbers(&sink, 1_000, MINUTE);
    let inode = std::fs::metadata(&path).unwrap().ino();
    std::fs::remove_file(&path).unwrap();
    // The input closes the deleted file once read; only then is its inode free.
    wait_until(MINUTE, "the input to close the deleted file", || {
        !holds_open(wishbone.pid(), &path)
    });
    // The inode is free once nothing holds it (the input's watch on the
    // deleted file may outlive its descriptor by a moment): an empty file
    // is made until it gets that inode, then written to.
    wait_until(
        MINUTE,
        "the file system to give a new file the freed inode",
        || {
            std::fs::File::create(&path).unwrap();
            let reused = std::fs::metadata(&path).unwrap().ino() == inode;
            if !reused {
                std::fs::remove_file(&path).unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
            reused
        },
    );
    append(&path, &all[1_000..].concat());
    wait_for_numbers(&sink, 2_000, MINUTE);
    assert!(wishbone.stop().success());
    exactly_once(&sink, 2_000);
}

#[test]
fn a_partial_last_line_finished_after_a_restart_arrives_whole_once() {
    let dir = scratch_dir("files-partial");
    let path = dir.join("app.log");
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        std::slice::from_ref(&path),
        &dir.join("checkpoints"),
        sink.port,
        "",
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    let data = numbered_lines(101);
    let all = lines(&data);
    append(&path, &all[..100].concat());
    append(&path, &all[100][..40]);
    wait_for_numbers(&sink, 100, MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    append(&path, &all[100][40..]);
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    wait_for_numbers(&sink, 101, MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 101);
    assert!(
        sink.received().ends_with(all[100]),
        "the last line arrives whole"
    );
}

#[test]
fn a_thousand_files_are_read_each_line_once() {
    let dir = scratch_dir("files-thousand");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let data = numbered_lines(100_000);
    for (index, chunk) in lines(&data).chunks(100).enumerate() {
        std::fs::write(logs.join(format!("{index:04}.log")), chunk.concat()).unwrap();
    }
    let sink = Sink::start(&dir, "receiver");
    let mut wishbone = Wishbone::start(
        &dir,
        &bootstrap(
            &[logs.join("*.log")],
            &dir.join("checkpoints"),
            sink.port,
            "",
        ),
        &[],
    );
    wait_for_numbers(&sink, 100_000, MINUTE);
    let peak = peak_rss_kib(wishbone.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 100_000);
    eprintln!("1,000 files: peak RSS {peak} KiB");
    assert!(peak < 128 * 1024, "{peak} KiB");
}

#[test]
fn a_100_mb_line_is_cut_and_counted_with_memory_bounded() {
    let dir = scratch_dir("files-huge-line");
    let path = dir.join("app.log");
    let data = numbered_lines(200);
    let all = lines(&data);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&all[..100].concat()).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        file.write_all(&chunk).unwrap();
    }
    file.write_all(b"\n").unwrap();
    file.write_all(&all[100..].concat()).unwrap();
    drop(file);
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        std::slice::from_ref(&path),
        &dir.join("checkpoints"),
        sink.port,
        ", max_line_length: 65536",
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    wait_for_numbers(&sink, 200, MINUTE);
    let peak = peak_rss_kib(wishbone.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 200);
    let received = sink.received();
    let cut: Vec<&[u8]> = lines(&received)
        .into_iter()
        .filter(|line| line.starts_with(b"xxx"))
        .collect();
    assert_eq!(cut.len(), 1, "the long line arrives once");
    assert_eq!(cut[0].len(), 65_536 + 1, "cut to max_line_length");
    assert!(
        wishbone.output.text().contains("truncated=1"),
        "{}",
        wishbone.output.text()
    );
    eprintln!("100 MB line: peak RSS {peak} KiB");
    assert!(peak < 64 * 1024, "{peak} KiB");
}

#[test]
fn checkpoints_on_a_full_disk_are_logged_once_and_written_when_room_comes_back() {
    let dir = scratch_dir("files-full-disk");
    let disk = small_disk_or_skip!(dir, "size=1m");
    let filler = disk.0.join("filler");
    let mut fill = std::fs::File::create(&filler).unwrap();
    while fill.write_all(&[0u8; 4096]).is_ok() {}
    drop(fill);
    let path = dir.join("app.log");
    let data = numbered_lines(1_000);
    append(&path, &data);
    let sink = Sink::start(&dir, "receiver");
    let config = bootstrap(
        std::slice::from_ref(&path),
        &disk.0.join("checkpoints"),
        sink.port,
        "",
    );
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    wait_for_numbers(&sink, 1_000, MINUTE);
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(
        wishbone.output.count("cannot write the checkpoints"),
        1,
        "{}",
        wishbone.output.text()
    );
    std::fs::remove_file(&filler).unwrap();
    let stored = disk.0.join("checkpoints/files.json");
    wait_until(MINUTE, "the checkpoints to be written", || {
        std::fs::read(&stored).is_ok_and(|data| !data.is_empty())
    });
    wishbone.signal(libc::SIGKILL);
    wishbone.wait(MINUTE);
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 1_000);
}

#[test]
fn check_names_a_checkpoint_directory_that_cannot_be_one() {
    let dir = scratch_dir("files-check");
    let occupied = dir.join("occupied");
    std::fs::write(&occupied, b"a file").unwrap();
    let file = dir.join("bootstrap.yaml");
    std::fs::write(
        &file,
        bootstrap(
            &[dir.join("*.log")],
            &occupied.join("checkpoints"),
            10000,
            "",
        ),
    )
    .unwrap();
    let (code, text) = wishbone_check(&file);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("module `files`")
            && text.contains("`checkpoints`")
            && text.contains("is a file"),
        "{text}"
    );
}

#[test]
fn batches_an_output_gives_back_are_sent_again_until_a_peer_takes_them() {
    let dir = scratch_dir("files-resend");
    let path = dir.join("app.log");
    append(&path, &numbered_lines(5_000));
    let port = free_port();
    // `failed: true` with nothing routed from it: while the peer is down
    // the output gives every event back, failing its token.
    let config = bootstrap(
        std::slice::from_ref(&path),
        &dir.join("checkpoints"),
        port,
        "",
    )
    .replace("reconnect_max: 0.2}", "reconnect_max: 0.2, failed: true}");
    let mut wishbone = Wishbone::start(&dir, &config, &[]);
    std::thread::sleep(Duration::from_millis(1_500));
    let sink = Sink::start_on(&dir, "receiver", port, &[]);
    wait_for_numbers(&sink, 5_000, MINUTE);
    std::thread::sleep(Duration::from_millis(300));
    assert!(wishbone.stop().success());
    exactly_once(&sink, 5_000);
    let log = wishbone.output.text();
    let resent: u64 = log
        .lines()
        .filter(|line| line.contains("input totals module=files"))
        .find_map(|line| field(line, "resent")?.parse().ok())
        .expect("the input's totals");
    assert!(resent > 0, "{log}");
}

#[test]
fn with_origin_each_line_names_its_file_and_offset_and_files_are_logged_once() {
    let dir = scratch_dir("files-origin");
    let sink = Sink::start(&dir, "sink");
    let (one, two) = (dir.join("one.log"), dir.join("two.log"));
    append(&one, b"first line\nsecond \xff line\n");
    append(&two, &"x".repeat(30).into_bytes());
    append(&two, b"\nshort\n");
    let pattern = dir.join("*.log");
    let text = bootstrap(
        &[pattern],
        &dir,
        sink.port,
        ", with_origin: true, max_line_length: 20",
    );
    let mut wishbone = Wishbone::start(&dir, &text, &[]);
    sink.wait_for_lines(4, MINUTE);
    std::fs::remove_file(&one).unwrap();
    wishbone
        .output
        .wait_for("file closed: gone, and read to its end", MINUTE);
    assert!(wishbone.stop().success());
    let received = String::from_utf8(sink.received()).unwrap();
    let mut events: Vec<serde_json::Value> = received
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    events.sort_by_key(|event| (event["file"].to_string(), event["offset"].as_u64()));
    let seen: Vec<(String, u64, String)> = events
        .iter()
        .map(|event| {
            let file = event["file"].as_str().unwrap();
            (
                Path::new(file)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                event["offset"].as_u64().unwrap(),
                event["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("one.log".into(), 0, "first line".into()),
            ("one.log".into(), 11, "second \u{fffd} line".into()),
            ("two.log".into(), 0, "x".repeat(20)),
            ("two.log".into(), 31, "short".into()),
        ],
        "each line with its file and where it starts; a long one cut to 20"
    );
    let log = wishbone.output.text();
    for file in [&one, &two] {
        let opened = format!("file opened module=files path={} offset=0", file.display());
        assert_eq!(log.matches(&opened).count(), 1, "{opened} once in:\n{log}");
    }
    assert_eq!(log.matches("file closed: gone").count(), 1);
    assert!(log.contains(&format!("path={}", one.display())));
}
