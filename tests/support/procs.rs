//! Child-process helpers for integration tests: every process started through
//! [`ChildGuard`] is stopped when the guard is dropped, also when the test panics.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child process; its stdout and stderr go to `<dir>/<name>.log`.
/// Dropping the guard sends SIGTERM to the child's process group, waits up to 5 s,
/// then SIGKILLs it, and reaps the child.
pub struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawn `cmd` in its own process group (so that grandchildren are stopped too).
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> ChildGuard {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log file handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Err with the log tail if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited early ({status}); last log lines:\n{}",
                self.name,
                self.log_tail(40)
            )),
            Err(e) => Err(format!("{}: wait failed: {e}", self.name)),
        }
    }

    /// Everything the process has written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the process' output.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn signal_group(&self, signal: &str) {
        // Negative pid: the whole process group this guard created (see `spawn`).
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl ChildGuard {
    /// Send SIGTERM to the process itself (not its group): what a service
    /// manager does to stop it.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Wait for the process to exit on its own (generous `limit`: a
    /// condition, not a speed), and reap it.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        wait_until(&format!("{} to exit", self.name), limit, || {
            self.child.try_wait().expect("wait")
        })
    }

    /// `kill -9` now, no grace (crash tests), and reap.
    pub fn sigkill(mut self) {
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            self.signal_group("-KILL"); // leftover grandchildren, if any
            return;
        }
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.signal_group("-KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` every 100 ms until it returns Some, or panic after `limit`: the
/// blocking twin of `support::wait_for`, for tests without a runtime.
pub fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until something accepts connections on 127.0.0.1:`port` (a child
/// process started listening).
pub fn wait_listening(what: &str, port: u16) {
    wait_until(what, Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Locate an external binary: `$env_var`, then each absolute candidate, then each bare
/// name on PATH. Panics (the test fails, it is not skipped) with a hint if not found.
pub fn require_binary(what: &str, env_var: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{what}: {env_var}={} does not exist. \
             Install the test dependencies with: bash scripts/install-test-deps.sh",
            p.display()
        );
        return p;
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() {
            if p.is_file() {
                return p.to_path_buf();
            }
        } else if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let full = dir.join(c);
                if full.is_file() {
                    return full;
                }
            }
        }
    }
    panic!(
        "{what} not found (looked at ${env_var}, {candidates:?}). \
         Install the test dependencies with: bash scripts/install-test-deps.sh"
    );
}

/// `promtool check metrics` on `body`: fails the test, naming promtool's
/// complaints, unless the exposition is clean (fails too without promtool).
pub fn promtool_check_metrics(body: &str) {
    use std::io::Write as _;
    let promtool = require_binary(
        "promtool",
        "PROMTOOL_BIN",
        &["/usr/bin/promtool", "promtool"],
    );
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = check.wait_with_output().expect("wait for promtool");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
