//! A TCP peer for tests and benchmarks: listens, and appends every complete
//! line it receives to a file (or only counts them), so a test can compare
//! what arrived with what was sent. A line cut off by a connection's end is
//! counted as partial and not written: it is what a dying connection leaves.
//!
//! wishbone-sink [--address A] [--port P] [--out FILE] [--pause-ms N] [--rcvbuf BYTES] [--read-size BYTES]
//! prints `listening ADDRESS` once ready; at each connection's end prints
//! `closed lines=N partial=0|1` on standard error.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Options {
    address: String,
    port: u16,
    out: Option<String>,
    pause: Duration,
    receive_buffer: Option<usize>,
    read_size: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        address: "127.0.0.1".into(),
        port: 0,
        out: None,
        pause: Duration::ZERO,
        receive_buffer: None,
        read_size: 256 * 1024,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--address" => options.address = value,
            "--port" => options.port = value.parse().map_err(|_| format!("bad port {value}"))?,
            "--out" => options.out = Some(value),
            "--read-size" => {
                options.read_size = value.parse().map_err(|_| format!("bad size {value}"))?
            }
            "--rcvbuf" => {
                options.receive_buffer =
                    Some(value.parse().map_err(|_| format!("bad size {value}"))?)
            }
            "--pause-ms" => {
                options.pause =
                    Duration::from_millis(value.parse().map_err(|_| format!("bad pause {value}"))?)
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind((options.address.as_str(), options.port)) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen: {error}");
            std::process::exit(1);
        }
    };
    if let Some(size) = options.receive_buffer {
        set_receive_buffer(&listener, size);
    }
    let out: Option<Arc<Mutex<std::fs::File>>> = options.out.as_ref().map(|path| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open the output file");
        Arc::new(Mutex::new(file))
    });
    println!(
        "listening {}",
        listener.local_addr().expect("bound address")
    );
    let _ = std::io::stdout().flush();
    for stream in listener.incoming().flatten() {
        let out = out.clone();
        let (pause, read_size) = (options.pause, options.read_size);
        std::thread::spawn(move || receive(stream, out, pause, read_size));
    }
}

/// A small receive buffer (inherited by accepted sockets) keeps the bytes
/// the kernel acknowledged but this program has not read yet few.
fn set_receive_buffer(listener: &TcpListener, size: usize) {
    use std::os::fd::AsRawFd;
    let size = size as libc::c_int;
    // SAFETY: setsockopt with a pointer to a live int and its size.
    unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads, and appends the complete lines of each read at once: what this
/// program has taken from the kernel and not yet written is at most one read.
fn receive(
    mut stream: TcpStream,
    out: Option<Arc<Mutex<std::fs::File>>>,
    pause: Duration,
    read_size: usize,
) {
    std::thread::sleep(pause);
    let mut buffer = vec![0u8; read_size.max(1)];
    let mut lines = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let read = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        carry.extend_from_slice(&buffer[..read]);
        if let Some(last) = carry.iter().rposition(|byte| *byte == b'\n') {
            lines += carry[..=last].iter().filter(|byte| **byte == b'\n').count() as u64;
            if let Some(out) = &out {
                let mut file = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _ = file.write_all(&carry[..=last]);
            }
            carry.drain(..=last);
        }
    }
    eprintln!(
        "closed lines={lines} partial={}",
        u8::from(!carry.is_empty())
    );
}
