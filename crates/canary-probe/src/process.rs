//! This process's memory and CPU use, read from /proc on Linux; `None`
//! elsewhere or when /proc cannot be read, so nothing is made up.

use std::sync::Mutex;
use std::time::Instant;

/// Resident memory as a percentage of the machine's memory.
pub fn memory_percent() -> Option<f64> {
    let rss_kb = field_kb(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")?;
    let total_kb = field_kb(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")?;
    (total_kb > 0.0).then(|| rss_kb * 100.0 / total_kb)
}

/// Resident memory in bytes.
pub fn rss_bytes() -> Option<u64> {
    let kb = field_kb(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")?;
    Some((kb * 1024.0) as u64)
}

fn field_kb(text: &str, key: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time used (user + system) in seconds, from /proc/self/stat.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start past ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Linux reports in clock ticks of 1/100 s on every mainstream platform.
    Some(ticks / 100.0)
}

/// CPU use between calls, as a percentage of all cores.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Mutex<Option<(Instant, f64)>>,
}

impl CpuMeter {
    /// The CPU use since the previous call (`None` on the first).
    pub fn percent(&self) -> Option<f64> {
        let now = (Instant::now(), cpu_seconds()?);
        let mut last = self.last.lock().ok()?;
        let prev = last.replace(now)?;
        let wall = now.0.duration_since(prev.0).as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        (wall > 0.0).then(|| ((now.1 - prev.1) / wall / cores * 100.0).clamp(0.0, 100.0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            let m = super::memory_percent().unwrap();
            assert!(m > 0.0 && m < 100.0);
            assert!(super::rss_bytes().unwrap() > 1024 * 1024);
        }
    }
}
