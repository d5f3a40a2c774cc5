//! Shared by the frame-throughput benchmarks `net_vde_bench` and
//! `net_vxlan_bench`: a VDE client's port request, the benchmark's MAC
//! addresses, what a run counts, and the settings read from the environment.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use umlkit::switch::proto::UnixAddr;
use umlkit::switch::vde::{encode_request, PortRequest};

/// The address of client `i`; `tag` keeps two benchmarks' apart.
pub fn mac(tag: u8, i: usize) -> [u8; 6] {
    let b = u32::try_from(i).unwrap().to_be_bytes();
    [2, tag, b[0], b[1], b[2], b[3]]
}

/// Asks the VDE switch in `dir` for a port as vdeplug4 does: returns the
/// control stream (the port lives while it is open) and a non-blocking
/// data socket connected to the switch's.
pub fn vde_connect(dir: &Path, n: usize) -> (UnixStream, UnixDatagram) {
    let mine = dir.join(format!(".{:05}-{n:05}", std::process::id()));
    let _ = std::fs::remove_file(&mine);
    let data = UnixDatagram::bind(&mine).unwrap();
    let mut ctl = UnixStream::connect(dir.join("ctl")).unwrap();
    let addr = UnixAddr::path(mine.as_os_str().as_encoded_bytes()).unwrap();
    ctl.write_all(&encode_request(&addr, PortRequest::Any, "vdeplug: bench"))
        .unwrap();
    let mut reply = [0u8; 110];
    ctl.read_exact(&mut reply).unwrap();
    let end = reply[2..].iter().position(|&b| b == 0).unwrap_or(108);
    let path = PathBuf::from(String::from_utf8_lossy(&reply[2..2 + end]).into_owned());
    data.connect(&path).unwrap();
    let _ = std::fs::remove_file(&mine);
    data.set_nonblocking(true).unwrap();
    (ctl, data)
}

/// What one run counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Result {
    pub delivered: u64,
    pub sent: u64,
    pub misdelivered: u64,
    pub secs: f64,
    pub switch_cpu: f64,
}

impl Result {
    /// Frames delivered per second.
    pub fn fps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }

    /// The share of frames sent that never arrived anywhere.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.sent.saturating_sub(self.delivered + self.misdelivered) as f64 / self.sent as f64
        }
    }
}

/// The settings both benchmarks read from the environment: `BENCH_SECS`
/// per measurement (3), `BENCH_ROUNDS` (3), `BENCH_WINDOW` frames in
/// flight per client (8), and `BENCH_CASES` (`PORTSxSIZE,...`; all when
/// unset).
pub struct Settings {
    pub secs: u64,
    pub rounds: usize,
    pub window: u32,
    only: String,
}

impl Settings {
    pub fn from_env() -> Settings {
        let env = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(d)
        };
        Settings {
            secs: env("BENCH_SECS", 3),
            rounds: usize::try_from(env("BENCH_ROUNDS", 3)).unwrap(),
            window: u32::try_from(env("BENCH_WINDOW", 8)).unwrap(),
            only: std::env::var("BENCH_CASES").unwrap_or_default(),
        }
    }

    /// Whether the case of `ports` ports and `size`-byte frames is to run.
    pub fn wants(&self, ports: usize, size: usize) -> bool {
        self.only.is_empty() || self.only.split(',').any(|c| c == format!("{ports}x{size}"))
    }
}
