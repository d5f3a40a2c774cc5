//! Throughput benchmark across a VXLAN tunnel (ignored by default; run it
//! with `benches/vxlan_pair.sh`): two network namespaces joined by a veth
//! pair, and in each either our `uml_switch -vde DIR -vxlan 42 -peer
//! OTHER` or a Linux bridge with a kernel `vxlan` device (id 42, dstport
//! 4789) enslaved. Clients are paired across the tunnel (client 2k in the
//! first namespace, 2k+1 in the second), learned with a broadcast each,
//! then send unicast frames to their partner with a bounded number in
//! flight, from one single-threaded load generator. Our switches' clients
//! are VDE clients (as in `net_vde_bench.rs`); the bridges' are TAP devices
//! (the way a kernel bridge takes frames from user space), read and written
//! one frame per call.

mod bench_load;
mod common;

use bench_load::Result;

use common::net::Netns;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use umlkit::sys::net::{
    recv_batch, send_batch_connected, tun_set_iff, RecvSlot, IFF_NO_PI, IFF_TAP,
};

/// The frames' EtherType (local experimental); frames of any other type
/// (a kernel's own chatter on a bridge) are ignored.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

fn mac(i: usize) -> [u8; 6] {
    bench_load::mac(0x43, i)
}

/// A client: a VDE data socket (with its control stream) or a TAP device.
enum Client {
    /// The control stream (the port lives while it is open) and the data socket.
    Vde(#[allow(dead_code)] UnixStream, UnixDatagram),
    Tap(File),
}

impl Client {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Client::Vde(_, d) => d.as_fd(),
            Client::Tap(f) => f.as_fd(),
        }
    }

    /// Receives what waits, up to `slots.len()` frames.
    fn recv(&self, slots: &mut [RecvSlot]) -> usize {
        match self {
            Client::Vde(_, d) => recv_batch(d.as_fd(), slots).unwrap_or(0),
            Client::Tap(f) => {
                let mut f: &File = f;
                let mut n = 0;
                for s in slots.iter_mut() {
                    match f.read(&mut s.buf) {
                        Ok(len) => {
                            s.len = len;
                            n += 1;
                        }
                        Err(_) => break,
                    }
                }
                n
            }
        }
    }

    /// Sends `frames`; returns how many went.
    fn send(&self, frames: &[&[u8]]) -> usize {
        match self {
            Client::Vde(_, d) => send_batch_connected(d.as_fd(), frames).sent,
            Client::Tap(f) => {
                let mut f: &File = f;
                frames.iter().take_while(|b| f.write(b).is_ok()).count()
            }
        }
    }
}

/// A VDE client of the switch directory `dir`.
fn vde_client(dir: &Path, n: usize) -> Client {
    let (ctl, data) = bench_load::vde_connect(dir, n);
    Client::Vde(ctl, data)
}

/// Opens the TAP device `name` of namespace `ns` (this thread enters the
/// namespace to attach, then goes back).
fn tap_client(ns: &Netns, name: &str) -> Client {
    let home = File::open("/proc/thread-self/ns/net").unwrap();
    let there = File::open(format!("/run/netns/{}", ns.name)).unwrap();
    nix::sched::setns(there.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")
        .unwrap();
    tun_set_iff(f.as_fd(), name.as_bytes(), IFF_TAP | IFF_NO_PI).unwrap();
    nix::sched::setns(home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    Client::Tap(f)
}

/// Counts the frames client `i` received (`size` bytes each expected).
fn take(
    i: usize,
    slots: &[RecvSlot],
    size: usize,
    r: &mut Result,
    inflight: &mut [u32],
    last_progress: &mut [Instant],
) {
    for s in slots {
        if s.len < 18 || s.buf[12..14] != ETHERTYPE {
            continue;
        }
        let from = u32::from_ne_bytes(s.buf[14..18].try_into().unwrap()) as usize;
        if s.len != size || from != (i ^ 1) || s.buf[..6] != mac(i) {
            r.misdelivered += 1;
        } else {
            r.delivered += 1;
            inflight[from] = inflight[from].saturating_sub(1);
            last_progress[from] = Instant::now();
        }
    }
}

/// Drives `clients` (partners 2k and 2k+1) with `size`-byte frames,
/// `window` in flight each, for `duration`.
fn load(clients: &[Client], size: usize, window: u32, duration: Duration) -> Result {
    let ports = clients.len();
    for (i, c) in clients.iter().enumerate() {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&mac(i));
        f[12..14].copy_from_slice(&ETHERTYPE);
        assert_eq!(c.send(&[&f]), 1, "client {i} could not send");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut slots: Vec<RecvSlot> = (0..32).map(|_| RecvSlot::new(2048)).collect();
    for c in clients {
        while c.recv(&mut slots) > 0 {}
    }
    let partner = |i: usize| i ^ 1;
    let templates: Vec<Vec<u8>> = (0..ports)
        .map(|i| {
            let mut f = vec![0u8; size];
            f[..6].copy_from_slice(&mac(partner(i)));
            f[6..12].copy_from_slice(&mac(i));
            f[12..14].copy_from_slice(&ETHERTYPE);
            f[14..18].copy_from_slice(&u32::try_from(i).unwrap().to_ne_bytes());
            f
        })
        .collect();
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
    for (i, c) in clients.iter().enumerate() {
        epoll
            .add(c.fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
            .unwrap();
    }
    let mut r = Result::default();
    let mut inflight = vec![0u32; ports];
    let mut last_progress = vec![Instant::now(); ports];
    let mut readable = vec![true; ports];
    let mut events = vec![EpollEvent::empty(); 64];
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
            while std::mem::take(&mut readable[i]) {
                let n = clients[i].recv(&mut slots);
                take(
                    i,
                    &slots[..n],
                    size,
                    &mut r,
                    &mut inflight,
                    &mut last_progress,
                );
                readable[i] = n == slots.len();
            }
        }
        for i in 0..ports {
            if inflight[i] > 0 && last_progress[i].elapsed() > Duration::from_millis(20) {
                inflight[i] = 0;
            }
            let k = window.saturating_sub(inflight[i]) as usize;
            if k == 0 {
                continue;
            }
            let frames: Vec<&[u8]> = (0..k).map(|_| &templates[i][..]).collect();
            let sent = clients[i].send(&frames);
            r.sent += sent as u64;
            inflight[i] += u32::try_from(sent).unwrap();
            if sent > 0 {
                last_progress[i] = Instant::now();
            }
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    for (i, c) in clients.iter().enumerate() {
        let n = c.recv(&mut slots);
        take(
            i,
            &slots[..n],
            size,
            &mut r,
            &mut inflight,
            &mut last_progress,
        );
    }
    r
}

const IP: [&str; 2] = ["192.168.79.1", "192.168.79.2"];

/// Two namespaces joined by a veth pair `vx-a`/`vx-b` (MTU 9000, so that
/// 1500-byte frames fit a VXLAN datagram), IPv6 off.
fn pair() -> [Netns; 2] {
    let ns = [Netns::new(), Netns::new()];
    for n in &ns {
        n.run_ok("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        n.run_ok("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    ns[0].run_ok(
        "ip",
        &[
            "link",
            "add",
            "vx-a",
            "mtu",
            "9000",
            "type",
            "veth",
            "peer",
            "name",
            "vx-b",
            "mtu",
            "9000",
            "netns",
            &ns[1].name,
        ],
    );
    for (k, dev) in ["vx-a", "vx-b"].iter().enumerate() {
        ns[k].run_ok("ip", &["addr", "add", &format!("{}/24", IP[k]), "dev", dev]);
        ns[k].run_ok("ip", &["link", "set", dev, "up"]);
    }
    ns
}

fn cpu(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e9
}

/// Our two switches, one per namespace, `ports` VDE clients.
fn measure_ours(ports: usize, size: usize, window: u32, secs: u64) -> Result {
    let ns = pair();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [tmp.path().join("a"), tmp.path().join("b")];
    let mut switches: Vec<Child> = (0..2)
        .map(|k| {
            ns[k]
                .command(common::bin("uml_switch"))
                .arg("-vde")
                .arg(&dirs[k])
                .args(["-vxlan", "42", "-peer", IP[1 - k]])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start uml_switch")
        })
        .collect();
    let start = Instant::now();
    for d in &dirs {
        while UnixStream::connect(d.join("ctl")).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "uml_switch never listened"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let clients: Vec<Client> = (0..ports).map(|i| vde_client(&dirs[i % 2], i)).collect();
    let before: f64 = switches.iter().map(|c| cpu(c.id())).sum();
    let mut r = load(&clients, size, window, Duration::from_secs(secs));
    r.switch_cpu = switches.iter().map(|c| cpu(c.id())).sum::<f64>() - before;
    for c in &mut switches {
        let _ = c.kill();
        let _ = c.wait();
    }
    r
}

/// A Linux bridge with a kernel vxlan device in each namespace, `ports`
/// TAP clients.
fn measure_linux(ports: usize, size: usize, window: u32, secs: u64) -> Result {
    let ns = pair();
    for (k, n) in ns.iter().enumerate() {
        let dev = ["vx-a", "vx-b"][k];
        n.run_ok("ip", &["link", "add", "br0", "type", "bridge"]);
        n.run_ok(
            "ip",
            &[
                "link",
                "add",
                "vx0",
                "mtu",
                "8950",
                "type",
                "vxlan",
                "id",
                "42",
                "local",
                IP[k],
                "remote",
                IP[1 - k],
                "dstport",
                "4789",
                "dev",
                dev,
            ],
        );
        n.run_ok("ip", &["link", "set", "vx0", "master", "br0", "up"]);
        n.run_ok("ip", &["link", "set", "br0", "mtu", "8950", "up"]);
    }
    for i in 0..ports {
        let n = &ns[i % 2];
        let tap = format!("bt{i}");
        n.run_ok("ip", &["tuntap", "add", "dev", &tap, "mode", "tap"]);
        n.run_ok(
            "ip",
            &["link", "set", &tap, "mtu", "8950", "master", "br0", "up"],
        );
    }
    let clients: Vec<Client> = (0..ports)
        .map(|i| tap_client(&ns[i % 2], &format!("bt{i}")))
        .collect();
    load(&clients, size, window, Duration::from_secs(secs))
}

#[test]
#[ignore = "benchmark: run benches/vxlan_pair.sh"]
fn vxlan_pair_throughput_ours_vs_linux_bridges() {
    let test = "vxlan_pair_throughput_ours_vs_linux_bridges";
    if !common::have_root(test) || !common::have_peers(test, &["ip", "sysctl"]) {
        return;
    }
    let settings = bench_load::Settings::from_env();
    let (secs, rounds, window) = (settings.secs, settings.rounds, settings.window);
    println!("| ports | frame | window/client | setup | frames/s (median of {rounds}) | frames per switch CPU-second (both) | loss | misdelivered |");
    println!("|---|---|---|---|---|---|---|---|");
    for (ports, size) in [(2usize, 64usize), (32, 64), (2, 1500), (32, 1500)] {
        if !settings.wants(ports, size) {
            continue;
        }
        let mut results: Vec<Vec<Result>> = vec![Vec::new(); 2];
        for _ in 0..rounds {
            results[0].push(measure_ours(ports, size, window, secs));
            results[1].push(measure_linux(ports, size, window, secs));
        }
        let names = [
            "2 uml_switch -vde -vxlan",
            "2 Linux bridges + vxlan devices",
        ];
        let mut medians = [0.0f64; 2];
        for k in 0..2 {
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
                names[k],
                m.fps(),
                m.loss() * 100.0
            );
        }
        println!(
            "ratio uml_switch pair/Linux bridge pair at {ports} ports, {size} bytes: {:.2}x",
            medians[0] / medians[1]
        );
    }
}
