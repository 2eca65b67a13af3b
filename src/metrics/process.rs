//! The `process_*` families ([`ProcessFamily`]), as client_golang's process
//! collector serves them on Linux, read from `/proc/self` when a scrape
//! writes them: no thread, no state but the start time (fixed for the
//! process, computed once). Elsewhere they are left out.

use super::catalog::ProcessFamily;
use super::text::write_value;

/// Append every process family (header and sample) to `out`; nothing where
/// `/proc` cannot be read.
pub fn encode(out: &mut String) {
    let Some(stat) = read() else { return };
    for &fam in ProcessFamily::ALL {
        let value = match fam {
            ProcessFamily::CpuSeconds => stat.cpu_seconds,
            ProcessFamily::OpenFds => stat.open_fds,
            ProcessFamily::MaxFds => stat.max_fds,
            ProcessFamily::VirtualMemory => stat.virtual_bytes,
            ProcessFamily::VirtualMemoryMax => stat.virtual_max_bytes,
            ProcessFamily::ResidentMemory => stat.resident_bytes,
            ProcessFamily::StartTime => stat.start_time,
        };
        out.push_str(fam.header());
        out.push_str(fam.def().name);
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }
}

/// One reading of the process's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub cpu_seconds: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub virtual_bytes: f64,
    pub virtual_max_bytes: f64,
    pub resident_bytes: f64,
    pub start_time: f64,
}

/// A resource's soft limit; 2^64 when unlimited (client_golang's value).
/// A macro: the resource's type differs between glibc and musl (the
/// static image).
#[cfg(target_os = "linux")]
macro_rules! soft_limit {
    ($resource:expr) => {{
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct it is given.
        if unsafe { libc::getrlimit($resource, &mut lim) } != 0 {
            f64::NAN
        } else if lim.rlim_cur == libc::RLIM_INFINITY {
            u64::MAX as f64
        } else {
            lim.rlim_cur as f64
        }
    }};
}

#[cfg(target_os = "linux")]
pub fn read() -> Option<Stat> {
    use std::sync::OnceLock;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields = StatFields::parse(&stat)?;
    let (ticks, page) = sysconf();
    // Boot time and the start in ticks never change for this process.
    static START: OnceLock<Option<f64>> = OnceLock::new();
    let start_time = (*START.get_or_init(|| {
        let boot = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(boot + fields.start_ticks as f64 / ticks)
    }))?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(Stat {
        cpu_seconds: (fields.utime + fields.stime) as f64 / ticks,
        open_fds: open_fds as f64,
        max_fds: soft_limit!(libc::RLIMIT_NOFILE),
        virtual_bytes: fields.vsize as f64,
        virtual_max_bytes: soft_limit!(libc::RLIMIT_AS),
        resident_bytes: fields.rss_pages as f64 * page,
        start_time,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn read() -> Option<Stat> {
    None
}

/// Clock ticks per second and the page size.
#[cfg(target_os = "linux")]
fn sysconf() -> (f64, f64) {
    // SAFETY: sysconf only reads a configuration value.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let or = |v: libc::c_long, default: f64| if v > 0 { v as f64 } else { default };
    (or(ticks, 100.0), or(page, 4096.0))
}

/// The fields of `/proc/self/stat` the families need.
#[derive(Debug, PartialEq)]
struct StatFields {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: u64,
}

impl StatFields {
    /// `pid (comm) state ppid …`: comm may hold spaces and parentheses, so
    /// the fields are counted from the last `)` (proc(5)).
    fn parse(stat: &str) -> Option<StatFields> {
        let rest = &stat[stat.rfind(')')? + 1..];
        // Field 3 (state) is index 0 here.
        let f: Vec<&str> = rest.split_ascii_whitespace().take(22).collect();
        let n = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
        Some(StatFields {
            utime: n(14)?,
            stime: n(15)?,
            start_ticks: n(22)?,
            vsize: n(23)?,
            rss_pages: n(24)?,
        })
    }
}

/// `btime` of `/proc/stat`: the boot time, in Unix seconds.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|b| b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_from_the_last_parenthesis() {
        let line = "4242 (m365 (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    150 25 0 0 20 0 6 0 123456 987654321 2500 18446744073709551615 1 1 0";
        assert_eq!(
            StatFields::parse(line),
            Some(StatFields {
                utime: 150,
                stime: 25,
                start_ticks: 123456,
                vsize: 987654321,
                rss_pages: 2500,
            })
        );
        assert_eq!(StatFields::parse("4242 (short) S 1 2"), None);
        assert_eq!(StatFields::parse("no parenthesis"), None);
    }

    #[test]
    fn boot_time_from_proc_stat() {
        let s = "cpu  1 2 3\nintr 5\nbtime 1764720000\nprocesses 9\n";
        assert_eq!(boot_time(s), Some(1_764_720_000.0));
        assert_eq!(boot_time("cpu 1\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_sanely() {
        let s = read().expect("/proc/self readable");
        let now = crate::timefmt::now_unix();
        assert!(s.start_time > 1.0e9 && s.start_time <= now + 1.0, "{s:?}");
        assert!(s.resident_bytes > 0.0 && s.virtual_bytes >= s.resident_bytes);
        assert!(s.open_fds >= 1.0 && s.open_fds <= s.max_fds, "{s:?}");
        assert!(s.cpu_seconds >= 0.0 && s.virtual_max_bytes > 0.0);
        // Fixed for the process.
        assert_eq!(read().unwrap().start_time, s.start_time);
    }

    #[test]
    fn encoded_with_headers_and_no_labels() {
        let mut out = String::new();
        encode(&mut out);
        if cfg!(target_os = "linux") {
            for f in ProcessFamily::ALL {
                assert!(out.contains(f.header()), "{out}");
                assert!(out.contains(&format!("\n{} ", f.def().name)), "{out}");
            }
            assert_eq!(out.lines().count(), 3 * ProcessFamily::ALL.len());
        }
    }
}
