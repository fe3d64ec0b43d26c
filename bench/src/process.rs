//! What the kernel knows of a process: CPU time and peak memory.

/// User plus system CPU seconds a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|index| fields.get(*index)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second.max(1.0)
}

/// Peak resident memory in MiB (VmHWM).
pub fn peak_rss_mib(pid: u32) -> f64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0.0;
    };
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// Waits for `child`, sampling its CPU seconds and peak memory (MiB) as it
/// runs: those, and how it ended.
pub fn follow(
    child: &mut std::process::Child,
) -> std::io::Result<(f64, f64, std::process::ExitStatus)> {
    let pid = child.id();
    let (mut cpu, mut rss) = (0.0f64, 0.0f64);
    loop {
        cpu = cpu.max(cpu_seconds(pid));
        rss = rss.max(peak_rss_mib(pid));
        if let Some(status) = child.try_wait()? {
            return Ok((cpu, rss, status));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
