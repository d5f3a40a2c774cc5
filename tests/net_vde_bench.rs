//! Throughput benchmark for `uml_switch -vde` against VDE's own
//! `vde_switch` (ignored by default; run it with `benches/vde_switch.sh`).
//! A single-threaded load generator speaks VDE's protocol as vdeplug4's
//! `vde://` plug does: each client binds a data socket in the switch
//! directory, sends the v3 request with a description on `DIR/ctl`, and
//! connects to the data socket the reply names. Clients are learned, then
//! each sends unicast frames to its partner with a bounded number in
//! flight. Frames delivered per second, loss and misdelivered frames, for
//! both switches, alternating in one run, in a private network namespace.
//! A last row per case runs the same generator with no switch at all (each
//! client's socket connected straight to its partner's): the most any
//! switch can show on the machine. `BENCH_OLD=PATH` adds another
//! `uml_switch` binary (an older build) to the comparison.

mod bench_load;
mod common;

use bench_load::Result;

use std::os::fd::AsFd;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use umlkit::sys::net::{recv_batch, send_batch_connected, RecvSlot};

fn mac(i: usize) -> [u8; 6] {
    bench_load::mac(0x42, i)
}

/// A VDE client: its control stream (the port lives while it is open) and
/// its data socket, connected to the switch's.
struct Client {
    _ctl: Option<UnixStream>,
    data: UnixDatagram,
}

/// `ports` clients with no switch: partners' sockets connected pairwise.
fn direct(ports: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..ports / 2 {
        let (a, b) = UnixDatagram::pair().unwrap();
        for data in [a, b] {
            data.set_nonblocking(true).unwrap();
            clients.push(Client { _ctl: None, data });
        }
    }
    clients
}

fn connect(dir: &Path, n: usize) -> Client {
    let (ctl, data) = bench_load::vde_connect(dir, n);
    Client {
        _ctl: Some(ctl),
        data,
    }
}

/// `clients` (paired 0-1, 2-3, ...), `size`-byte frames, `window` in
/// flight each, for `duration`.
fn load(clients: Vec<Client>, size: usize, window: u32, duration: Duration) -> Result {
    let ports = clients.len();
    for (i, c) in clients.iter().enumerate() {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac(i));
        c.data.send(&f).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut slots: Vec<RecvSlot> = (0..32).map(|_| RecvSlot::new(2048)).collect();
    for c in &clients {
        while recv_batch(c.data.as_fd(), &mut slots).unwrap_or(0) > 0 {}
    }
    let partner = |i: usize| i ^ 1;
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
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
    for (i, c) in clients.iter().enumerate() {
        epoll
            .add(
                c.data.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
            )
            .unwrap();
    }
    let mut inflight = vec![0u32; ports];
    let mut last_progress = vec![Instant::now(); ports];
    let mut readable = vec![true; ports];
    let mut events = vec![EpollEvent::empty(); 64];
    let mut r = Result::default();
    let start = Instant::now();
    while start.elapsed() < duration {
        let can_send = inflight.iter().any(|&n| n < window);
        let n = epoll
            .wait(&mut events, if can_send { 0u16 } else { 5u16 })
            .unwrap_or(0);
        for ev in &events[..n] {
            readable[usize::try_from(ev.data()).unwrap()] = true;
        }
        for i in 0..ports {
            let c = &clients[i];
            while std::mem::take(&mut readable[i]) {
                let n = recv_batch(c.data.as_fd(), &mut slots).unwrap_or(0);
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
                inflight[i] = 0;
                last_progress[i] = Instant::now();
            }
            let k = window.saturating_sub(inflight[i]) as usize;
            if k == 0 {
                continue;
            }
            let frames: Vec<&[u8]> = (0..k).map(|_| &templates[i][..]).collect();
            let out = send_batch_connected(c.data.as_fd(), &frames);
            r.sent += out.sent as u64;
            inflight[i] += u32::try_from(out.sent).unwrap();
            if out.sent > 0 {
                last_progress[i] = Instant::now();
            }
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    for (i, c) in clients.iter().enumerate() {
        let n = recv_batch(c.data.as_fd(), &mut slots).unwrap_or(0);
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

/// The switches compared: ours, VDE's, and an optional other build of ours.
#[derive(Clone, Copy)]
enum Switch<'a> {
    Ours,
    Vde,
    Other(&'a Path),
    None,
}

impl Switch<'_> {
    fn label(&self) -> &'static str {
        match self {
            Switch::Ours => "uml_switch -vde",
            Switch::Vde => "vde_switch",
            Switch::Other(_) => "BENCH_OLD uml_switch -vde",
            Switch::None => "no switch (generator alone)",
        }
    }
}

/// Starts switch `sw` on directory `dir` (stdin a pipe kept open:
/// `vde_switch` exits on EOF there).
fn spawn(sw: Switch<'_>, dir: &Path) -> Child {
    let name = sw.label();
    let mut cmd = match sw {
        Switch::Vde => {
            let mut c = Command::new("vde_switch");
            c.arg("-s").arg(dir).args(["-n", "64"]);
            c
        }
        Switch::Other(path) => {
            let mut c = Command::new(path);
            c.arg("-vde").arg(dir);
            c
        }
        Switch::Ours => {
            let mut c = Command::new(common::bin("uml_switch"));
            c.arg("-vde").arg(dir);
            c
        }
        Switch::None => unreachable!("there is no switch to start"),
    };
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switch");
    let start = Instant::now();
    while UnixStream::connect(dir.join("ctl")).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name} never listened"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn measure(sw: Switch<'_>, ports: usize, size: usize, window: u32, secs: u64) -> Result {
    let duration = Duration::from_secs(secs);
    if let Switch::None = sw {
        return load(direct(ports), size, window, duration);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let mut child = spawn(sw, &dir);
    let cpu = |pid: u32| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e9
    };
    let before = cpu(child.id());
    let clients = (0..ports).map(|i| connect(&dir, i)).collect();
    let mut r = load(clients, size, window, duration);
    r.switch_cpu = cpu(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    r
}

#[test]
#[ignore = "benchmark: run benches/vde_switch.sh"]
fn vde_throughput_ours_vs_vde_switch() {
    let test = "vde_throughput_ours_vs_vde_switch";
    if !common::have_root(test) || !common::have_peers(test, &["vde_switch"]) {
        return;
    }
    let settings = bench_load::Settings::from_env();
    let (secs, rounds, window) = (settings.secs, settings.rounds, settings.window);
    let old = std::env::var_os("BENCH_OLD").map(PathBuf::from);
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut switches = vec![Switch::Ours, Switch::Vde];
        if let Some(p) = &old {
            switches.push(Switch::Other(p));
        }
        switches.push(Switch::None);
        println!("| ports | frame | window/client | switch | frames/s (median of {rounds}) | frames per switch CPU-second | loss | misdelivered |");
        println!("|---|---|---|---|---|---|---|---|");
        for (ports, size) in [(2usize, 64usize), (32, 64), (2, 1500), (32, 1500)] {
            if !settings.wants(ports, size) {
                continue;
            }
            let mut results: Vec<Vec<Result>> = vec![Vec::new(); switches.len()];
            for _ in 0..rounds {
                for (k, sw) in switches.iter().enumerate() {
                    results[k].push(measure(*sw, ports, size, window, secs));
                }
            }
            let mut medians = vec![0.0f64; switches.len()];
            for (k, sw) in switches.iter().enumerate() {
                let mut v = results[k].clone();
                v.sort_by(|a, b| a.fps().total_cmp(&b.fps()));
                let m = v[v.len() / 2];
                medians[k] = m.fps();
                let mis: u64 = results[k].iter().map(|r| r.misdelivered).sum();
                let per_cpu = if m.switch_cpu > 0.0 {
                    format!("{:.0}", m.delivered as f64 / m.switch_cpu)
                } else {
                    String::new()
                };
                println!(
                    "| {ports} | {size} | {window} | {} | {:.0} | {per_cpu} | {:.2}% | {mis} |",
                    sw.label(),
                    m.fps(),
                    m.loss() * 100.0
                );
            }
            println!(
                "ratio uml_switch/vde_switch at {ports} ports, {size} bytes: {:.2}x",
                medians[0] / medians[1]
            );
            if old.is_some() {
                println!(
                    "ratio uml_switch/BENCH_OLD at {ports} ports, {size} bytes: {:.2}x",
                    medians[0] / medians[2]
                );
            }
        }
    })
    .join()
    .unwrap();
}
