//! The binary under SIGTERM, as a service manager stops it, while the audit
//! feed is catching up and a scrape is being written: the scrape in flight
//! is finished (complete responses, the connection closed at a response's
//! end), the process exits 0, and its last checkpoint covers everything it
//! wrote to the sink (a restart would cut nothing back, fetch nothing again).

mod support;

use m365_exporter::simulator::{Faults, SimOptions, Simulator};
use std::process::Command;
use std::time::Duration;
use support::activity::{all_types, now_ms, PUBLISHER};
use support::procs::{self, ChildGuard};
use support::{wait_for, SimTenant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Complete HTTP/1.1 responses at the start of `bytes` (status 200 and
/// a body of exactly its Content-Length each), and the bytes left over.
fn complete_responses(mut bytes: &[u8]) -> (usize, usize) {
    let mut n = 0;
    loop {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (n, bytes.len());
        };
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .unwrap_or_else(|| panic!("no content-length: {head}"))
            .trim()
            .parse()
            .unwrap();
        let body_end = end + 4 + len;
        if bytes.len() < body_end {
            return (n, bytes.len());
        }
        n += 1;
        bytes = &bytes[body_end..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_scrape_in_flight_exits_0_and_checkpoints_the_sink() {
    let sim = Simulator::start(SimOptions {
        faults: Faults {
            // Slow blobs: the feed is still writing when the signal comes.
            blob_delay: Duration::from_millis(80),
            ..Faults::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let truth = sim.audit().truth(&all_types(), 0, now_ms());
    let dir = tempfile::tempdir().unwrap();
    let (state, out, cfg) = (
        dir.path().join("state.json"),
        dir.path().join("audit.ndjson"),
        dir.path().join("config.yml"),
    );
    // Every collector on: a scrape body of tens of KB (see below).
    let tenant = SimTenant::new("term", &sim.url())
        .management(&sim.url())
        .with(&format!(
            "activity: {{enabled: true, interval: 1s, lookback: 2d, publisher_id: {PUBLISHER}, concurrency: 2, state_file: \"{}\", output: \"{}\"}}",
            state.display(),
            out.display()
        ));
    std::fs::write(&cfg, format!("tenants:\n{tenant}")).unwrap();
    let port = procs::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m365-exporter"));
    cmd.arg("--config.file")
        .arg(&cfg)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut exp = ChildGuard::spawn("exporter", cmd, dir.path());
    let lines = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wanted = truth.ids.len();
    wait_for(
        "a part of the records in the sink",
        Duration::from_secs(90),
        || async { (lines() >= wanted / 4).then_some(()) },
    )
    .await;

    // A scrape in flight: requests pipelined on one connection whose reader
    // takes one byte and then stops, so the server is blocked in the middle
    // of writing when the signal comes: more bytes than the socket buffers
    // hold (the server's send buffer is at most tcp_wmem's maximum, the
    // client's receive buffer is set small). The requests fit in the
    // server's first 8 KiB read: none is left unread in the kernel when it
    // closes (which would turn its close into a reset).
    let url = format!("http://127.0.0.1:{port}/metrics");
    let body = wait_for(
        "service health and messages refreshed",
        Duration::from_secs(90),
        || async {
            let body = support::get(&url).await.2;
            let m = support::parse(&body);
            ["service_health", "messages"]
                .iter()
                .all(|c| {
                    support::select(&m, "m365_collector_success", &[("collector", c)])
                        .iter()
                        .any(|s| s.value == 1.0)
                })
                .then_some(body)
        },
    )
    .await;
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|t| t.split_whitespace().last()?.parse().ok())
        .unwrap_or(4 << 20);
    let one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let requests = 3 * wmem_max / 2 / body.len() + 20;
    assert!(
        requests * one.len() <= 8192,
        "precondition: {requests} requests of a {} byte scrape do not fit in 8 KiB",
        body.len()
    );
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    conn.write_all(&one.repeat(requests)).await.unwrap();
    let mut first = [0u8; 1];
    conn.read_exact(&mut first).await.unwrap();

    exp.sigterm();
    let mut got = first.to_vec();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut got))
        .await
        .expect("the connection is closed after the response in flight")
        .expect("closed cleanly, not reset");
    let (complete, left) = complete_responses(&got);
    assert_eq!(
        left, 0,
        "the connection ended inside a response ({complete} complete)"
    );
    assert!(complete >= 1);
    assert!(
        complete < requests,
        "the scrape was in flight: not every pipelined request was answered ({complete}/{requests})"
    );

    let status = tokio::task::block_in_place(|| exp.wait_exit(Duration::from_secs(60)));
    assert_eq!(status.code(), Some(0), "exit status: {status}");
    let at_exit = lines();
    let log = exp.log_text();
    assert!(log.contains("shutting down"), "{log}");

    // The last checkpoint covers the whole sink: nothing written after it.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).expect("the state file is JSON");
    let mark = saved["state"]["sink"]["len"].as_u64().expect("a sink mark");
    let written = std::fs::metadata(&out).unwrap().len();
    assert_eq!(mark, written, "the final checkpoint covers the sink");
    let mut ids = std::collections::HashSet::new();
    for l in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("a whole NDJSON line");
        if let Some(id) = v["Id"].as_str() {
            assert!(ids.insert(id.to_string()), "written twice: {l}");
        }
    }
    println!(
        "figures: records={wanted} in the sink at exit={at_exit} scrape={} bytes pipelined={requests} answered={complete}",
        body.len()
    );
}
