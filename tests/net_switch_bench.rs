//! Throughput benchmark for `uml_switch` (ignored by default; run it with
//! `benches/net_switch.sh`). A single-threaded load generator speaks the
//! switch's data protocol: clients join, are learned, then each sends
//! unicast frames to its partner with a bounded number in flight (the
//! default `net.unix.max_dgram_qlen` of 10 leaves no room for more). It
//! counts frames delivered per second, lost frames and frames delivered to
//! the wrong client, for our switch and Debian's, alternating in one run.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use umlkit::switch::client::SwitchClient;
use umlkit::sys::net::{recv_batch, send_batch_until_block, RecvSlot, SendItem};

fn mac(i: usize) -> [u8; 6] {
    let b = u32::try_from(i).unwrap().to_be_bytes();
    [2, 0x42, b[0], b[1], b[2], b[3]]
}

/// One measurement.
#[derive(Debug, Clone, Copy, Default)]
struct Result {
    delivered: u64,
    sent: u64,
    misdelivered: u64,
    secs: f64,
    /// CPU time the switch process used during the run (schedstat).
    switch_cpu: f64,
    /// Context switches of the switch process during the run.
    switch_ctxt: u64,
}

impl Result {
    fn fps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
    /// Frames delivered per second of the switch's CPU time: how much work
    /// the switch does per frame, whatever else runs on the machine.
    fn per_cpu_sec(&self) -> f64 {
        self.delivered as f64 / self.switch_cpu.max(1e-9)
    }
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.sent.saturating_sub(self.delivered + self.misdelivered) as f64 / self.sent as f64
        }
    }
}

fn spawn_switch(program: &Path, ctl: &Path) -> Child {
    let child = Command::new(program)
        .arg("-unix")
        .arg(ctl)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switch");
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(ctl).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "switch never listened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// One load: `ports` clients sending `size`-byte frames with `window` in
/// flight each, for `duration`. With `direct` each frame goes straight to
/// the partner's socket instead (the switch only introduces the clients),
/// which measures the generator alone: the most any switch can show on
/// this machine.
#[derive(Debug, Clone, Copy)]
struct Case {
    ports: usize,
    size: usize,
    window: u32,
    duration: Duration,
    direct: bool,
}

/// Runs `case` through the switch at `ctl`.
fn load(ctl: &Path, case: Case) -> Result {
    let Case {
        ports,
        size,
        window,
        duration,
        direct,
    } = case;
    let clients: Vec<SwitchClient> = (0..ports)
        .map(|_| SwitchClient::connect(ctl).unwrap())
        .collect();
    // Let the switch learn every address (a broadcast from each).
    for (i, c) in clients.iter().enumerate() {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac(i));
        c.send(&f).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut slots: Vec<RecvSlot> = (0..32).map(|_| RecvSlot::new(2048)).collect();
    for c in &clients {
        while recv_batch(c.data_fd(), &mut slots).unwrap() > 0 {}
    }

    let partner = |i: usize| i ^ 1;
    // Each client's frame template: to its partner, from itself, with the
    // sender's index at 14..18 and a sequence number at 18..26.
    let templates: Vec<Vec<u8>> = (0..ports)
        .map(|i| {
            let mut f = vec![0u8; size];
            f[..6].copy_from_slice(&mac(partner(i)));
            f[6..12].copy_from_slice(&mac(i));
            f[12] = 0x88;
            f[13] = 0xb5;
            f[14..18].copy_from_slice(&u32::try_from(i).unwrap().to_ne_bytes());
            f
        })
        .collect();
    let mut inflight = vec![0u32; ports];
    let mut last_progress = vec![Instant::now(); ports];
    let mut r = Result::default();
    let mut bufs: Vec<Vec<u8>> = (0..window).map(|_| vec![0u8; size]).collect();
    // Readiness of the clients' data sockets comes from epoll: the
    // generator shares the machine with the switch it measures.
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
    for (i, c) in clients.iter().enumerate() {
        epoll
            .add(c.data_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .unwrap();
    }
    let spin = std::env::var("BENCH_GEN").is_ok_and(|v| v == "spin");
    let mut events = vec![EpollEvent::empty(); 64];
    let mut readable = vec![true; ports];
    let start = Instant::now();
    let mut seq: u64 = 0;
    while start.elapsed() < duration {
        // Which clients have frames waiting: ask epoll (without waiting
        // while there is sending to do, else up to 5 ms), so idle clients
        // cost no receive calls.
        let can_send = (0..ports).any(|i| inflight[i] < window);
        let timeout: u16 = if can_send || spin { 0 } else { 5 };
        let n = epoll.wait(&mut events, timeout).unwrap_or(0);
        for ev in &events[..n] {
            readable[usize::try_from(ev.data()).unwrap()] = true;
        }
        for i in 0..ports {
            let c = &clients[i];
            while std::mem::take(&mut readable[i]) {
                let n = recv_batch(c.data_fd(), &mut slots).unwrap();
                for s in &slots[..n] {
                    let from = u32::from_ne_bytes(s.buf[14..18].try_into().unwrap()) as usize;
                    if s.len != size || from != partner(i) || s.buf[..6] != mac(i) {
                        r.misdelivered += 1;
                    } else {
                        r.delivered += 1;
                        inflight[from] = inflight[from].saturating_sub(1);
                        last_progress[from] = Instant::now();
                    }
                }
                readable[i] = n == slots.len();
            }
            if inflight[i] > 0 && last_progress[i].elapsed() > Duration::from_millis(20) {
                // Lost somewhere: stop waiting for them.
                inflight[i] = 0;
                last_progress[i] = Instant::now();
            }
            let k = window.saturating_sub(inflight[i]) as usize;
            if k == 0 {
                continue;
            }
            for b in bufs.iter_mut().take(k) {
                b.copy_from_slice(&templates[i]);
                seq += 1;
                b[18..26].copy_from_slice(&seq.to_ne_bytes());
            }
            let items: Vec<SendItem<'_>> = bufs[..k]
                .iter()
                .map(|b| SendItem {
                    buf: b,
                    to: if direct {
                        clients[partner(i)].addr.0
                    } else {
                        c.switch.0
                    },
                })
                .collect();
            let sent = send_batch_until_block(c.data_fd(), &items).unwrap();
            r.sent += sent as u64;
            inflight[i] += u32::try_from(sent).unwrap();
            if sent > 0 {
                last_progress[i] = Instant::now();
            }
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    // Collect what is still on its way.
    std::thread::sleep(Duration::from_millis(50));
    for (i, c) in clients.iter().enumerate() {
        let n = recv_batch(c.data_fd(), &mut slots).unwrap();
        for s in &slots[..n] {
            let from = u32::from_ne_bytes(s.buf[14..18].try_into().unwrap()) as usize;
            if from == partner(i) && s.len == size {
                r.delivered += 1;
            } else {
                r.misdelivered += 1;
            }
        }
    }
    r
}

fn measure(program: &Path, case: Case) -> Result {
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let mut child = spawn_switch(program, &ctl);
    let cpu = || -> f64 {
        let s =
            std::fs::read_to_string(format!("/proc/{}/schedstat", child.id())).unwrap_or_default();
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9
    };
    let ctxt = || -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        s.lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    };
    let before = cpu();
    let ctxt_before = ctxt();
    let mut r = load(&ctl, case);
    r.switch_cpu = cpu() - before;
    r.switch_ctxt = ctxt() - ctxt_before;
    let _ = child.kill();
    let _ = child.wait();
    r
}

#[test]
#[ignore = "benchmark: run benches/net_switch.sh"]
fn switch_throughput_ours_vs_debian() {
    let test = "switch_throughput_ours_vs_debian";
    if !common::have_root(test) || !common::have_peers(test, &["uml_switch"]) {
        return;
    }
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // Programs compared, alternating: ours and Debian's unless
    // BENCH_PROGRAMS=name=path,name=path says otherwise. The ratio is the
    // first one's over the last one's.
    let programs: Vec<(String, std::path::PathBuf)> = match std::env::var("BENCH_PROGRAMS") {
        Ok(list) => list
            .split(',')
            .filter_map(|p| p.split_once('=').map(|(n, p)| (n.to_string(), p.into())))
            .collect(),
        Err(_) => vec![
            ("umlkit".to_string(), common::bin("uml_switch")),
            ("debian".to_string(), "/usr/bin/uml_switch".into()),
        ],
    };
    std::thread::spawn(move || {
        // A private network namespace: its own abstract socket names and
        // the default net.unix.max_dgram_qlen.
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        // BENCH_QLEN raises net.unix.max_dgram_qlen in this namespace only
        // (the default of 10 keeps batches tiny).
        if let Ok(q) = std::env::var("BENCH_QLEN") {
            std::fs::write("/proc/sys/net/unix/max_dgram_qlen", q).unwrap();
        }
        let qlen = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen").unwrap_or_default();
        println!("net.unix.max_dgram_qlen = {}", qlen.trim());
        println!("| ports | frame | window/client | switch | frames/s (median of {rounds}) | frames per switch CPU-second | frames per switch context switch | loss | misdelivered |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let only = std::env::var("BENCH_CASES").unwrap_or_default();
        // Frames in flight per client: each client's own queue holds
        // net.unix.max_dgram_qlen of them (10 by default).
        let window: u32 = std::env::var("BENCH_WINDOW").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
        // BENCH_CEILING=1 adds a row for the generator alone (its clients
        // send straight to each other, our switch only introduces them).
        let ceiling = std::env::var("BENCH_CEILING").is_ok_and(|v| v == "1");
        for (ports, size) in [(2usize, 64usize), (2, 1500), (32, 64), (32, 1500)] {
            if !only.is_empty() && !only.split(',').any(|c| c == format!("{ports}x{size}")) {
                continue;
            }
            let case = Case { ports, size, window, duration: Duration::from_secs(secs), direct: false };
            let mut results: Vec<Vec<Result>> = vec![Vec::new(); programs.len()];
            for _ in 0..rounds {
                for (k, (_, prog)) in programs.iter().enumerate() {
                    results[k].push(measure(prog, case));
                }
            }
            if ceiling {
                let mut v: Vec<Result> = (0..rounds)
                    .map(|_| measure(&common::bin("uml_switch"), Case { direct: true, ..case }))
                    .collect();
                v.sort_by(|a, b| a.fps().total_cmp(&b.fps()));
                println!(
                    "| {ports} | {size} | {window} | no switch: the generator alone | {:.0} | | | {:.2}% | |",
                    v[v.len() / 2].fps(),
                    v[v.len() / 2].loss() * 100.0
                );
            }
            let mut medians = vec![0.0f64; programs.len()];
            for (k, (name, _)) in programs.iter().enumerate() {
                let mut v = results[k].clone();
                v.sort_by(|a, b| a.fps().total_cmp(&b.fps()));
                let m = v[v.len() / 2];
                medians[k] = m.fps();
                let mis: u64 = results[k].iter().map(|r| r.misdelivered).sum();
                println!(
                    "| {ports} | {size} | {window} | {name} | {:.0} | {:.0} | {:.1} | {:.2}% | {mis} |",
                    m.fps(),
                    m.per_cpu_sec(),
                    m.delivered as f64 / m.switch_ctxt.max(1) as f64,
                    m.loss() * 100.0
                );
            }
            println!(
                "ratio {}/{} at {ports} ports, {size} bytes: {:.2}x",
                programs[0].0,
                programs[programs.len() - 1].0,
                medians[0] / medians[medians.len() - 1]
            );
        }
    })
    .join()
    .unwrap();
}
