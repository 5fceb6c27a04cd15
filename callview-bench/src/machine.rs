//! The machine a run happens on, and this process's memory (from `/proc`).

use serde::Serialize;

/// What the figures were measured on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// Total memory, MiB.
    pub memory_mib: u64,
    /// 1-minute load average when the report was made (other work on the
    /// machine skews figures: it is shared).
    pub load_average: f64,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads `/proc`; fields that cannot be read are empty or 0.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = field_kib(&meminfo, "MemTotal:").unwrap_or(0) / 1024;
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            load_average,
            kernel,
        }
    }

    /// One line: `2 cores, Intel ..., 23.5 GiB, load 1.20`.
    pub fn summary(&self) -> String {
        format!(
            "{} cores, {}, {:.1} GiB RAM, load average {:.2}",
            self.cores,
            self.cpu,
            self.memory_mib as f64 / 1024.0,
            self.load_average
        )
    }
}

fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// This process's resident set size now (`VmRSS`), MiB.
pub fn rss_mib() -> f64 {
    status_field("VmRSS:")
}

/// This process's peak resident set size (`VmHWM`), MiB.
pub fn peak_rss_mib() -> f64 {
    status_field("VmHWM:")
}

fn status_field(name: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| field_kib(&s, name))
        .map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// Resets this process's peak RSS to the current RSS (writes `5` to
/// `/proc/self/clear_refs`, Linux 4.0+), so the next [`peak_rss_mib`] is
/// the peak of what follows. Returns whether the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Measures the peak RSS of one phase of this process.
#[derive(Clone, Copy, Debug)]
pub struct RssProbe {
    /// RSS when the phase started, MiB.
    pub before_mib: f64,
    /// Whether the peak was reset at the start (otherwise the peak may
    /// come from earlier work of the process).
    pub reset: bool,
}

impl RssProbe {
    /// Starts a phase: resets the peak and remembers the current RSS.
    pub fn start() -> Self {
        let reset = reset_peak_rss();
        Self {
            before_mib: rss_mib(),
            reset,
        }
    }

    /// The peak RSS since [`RssProbe::start`], MiB.
    pub fn peak_mib(&self) -> f64 {
        peak_rss_mib().max(self.before_mib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(rss_mib() > 0.0);
        let probe = RssProbe::start();
        assert!(probe.peak_mib() >= probe.before_mib);
    }
}
