//! Many guests at once (issue 12): `null` consoles and serial lines cost
//! no host pty, so a host with the default pty limit runs hundreds of
//! busybox guests together. Every guest runs as the test user, on its own
//! COW file over one shared image, and waits on its console until all of
//! them are up; then each is told to halt.

mod common;

use common::kernel::{can_boot, test_user, KGuest};
use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Guests the big test wants at once.
const WANTED: usize = 300;
/// Host tasks (processes and threads) of one guest at its peak: the
/// monitor's threads, the id-map helper and newuidmap, init and a child.
const TASKS_PER_GUEST: u64 = 16;
/// Host memory a booting guest may need, with room to spare.
const MIB_PER_GUEST: u64 = 16;

/// Prints a marker, waits for a line on the console, halts.
const INIT: &str = r#"#!/bin/sh
stat -c "node %n %t:%T" /dev/tty1 /dev/tty15 /dev/ttyS0 /dev/tty3 2>&1
if [ -n "$PROBE" ]; then
  echo dropped > /dev/tty1 && echo "tty1-write-ok"
  echo "tty1-read-bytes $(cat /dev/tty1 | wc -c)"
fi
echo "SCALE-UP id=$ID"
read go
echo "SCALE-GO id=$ID $go"
poweroff -f
"#;

/// Guests started together; every process group is killed when dropped,
/// so that no guest outlives its test.
struct Fleet {
    guests: Vec<(Child, PathBuf, File)>,
}

impl Fleet {
    /// Starts `n` guests of `g`, each with `extra` words and `ID=<i>`.
    fn start(g: &KGuest, n: usize, extra: &[&str]) -> Fleet {
        let mut fleet = Fleet { guests: Vec::new() };
        for i in 0..n {
            let (disk, umid, id) = (
                format!("ubd0=s{i}.cow,root_fs"),
                format!("umid=s{i}"),
                format!("ID={i}"),
            );
            let mut args = vec![
                disk.as_str(),
                "root=/dev/ubda",
                "rw",
                "init=/init",
                umid.as_str(),
                "con=null",
                "con0=fd:0,fd:1",
                id.as_str(),
            ];
            args.extend_from_slice(extra);
            let out = g.path(&format!("s{i}.out"));
            let file = File::create(&out).unwrap();
            let mut cmd = g.command(&args);
            cmd.stdin(Stdio::piped())
                .stdout(file.try_clone().unwrap())
                .stderr(file);
            let mut child = cmd.spawn().expect("spawn linux");
            let stdin = File::from(std::os::fd::OwnedFd::from(child.stdin.take().unwrap()));
            fleet.guests.push((child, out, stdin));
        }
        fleet
    }

    fn output(&self, i: usize) -> String {
        std::fs::read_to_string(&self.guests[i].1)
            .unwrap_or_default()
            .replace('\r', "")
    }

    /// Waits until every guest printed its marker; the indices of those
    /// that did not (in time, or because they ended).
    fn wait_up(&mut self, limit: Duration) -> Vec<usize> {
        let start = Instant::now();
        let mut pending: Vec<usize> = (0..self.guests.len()).collect();
        while !pending.is_empty() && start.elapsed() < limit {
            let mut still = Vec::new();
            for i in pending {
                let up = self.output(i).contains(&format!("SCALE-UP id={i}\n"));
                let ended = self.guests[i].0.try_wait().unwrap().is_some();
                if !up && !ended {
                    still.push(i);
                } else if !up {
                    return vec![i];
                }
            }
            pending = still;
            std::thread::sleep(Duration::from_millis(20));
        }
        pending
    }

    /// Tells every guest to go on (a line on its console) and waits for
    /// all to end: their exit statuses (`None` = killed at `limit`).
    fn release_and_wait(&mut self, limit: Duration) -> Vec<Option<i32>> {
        for (_, _, stdin) in &mut self.guests {
            let _ = stdin.write_all(b"go\n");
        }
        let start = Instant::now();
        let mut codes = vec![None; self.guests.len()];
        let mut left = self.guests.len();
        while left > 0 && start.elapsed() < limit {
            for (i, (child, _, _)) in self.guests.iter_mut().enumerate() {
                if codes[i].is_none() {
                    if let Some(s) = child.try_wait().unwrap() {
                        codes[i] = Some(s.code().unwrap_or(128 + s.signal().unwrap_or(0)));
                        left -= 1;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        codes
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (child, _, _) in &mut self.guests {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Host ptys in use: one counter for every devpts instance.
fn ptys_in_use() -> u64 {
    read_number("/proc/sys/kernel/pty/nr").expect("/proc/sys/kernel/pty/nr")
}

/// The host's pty count while guests run, and its growth since `before`.
/// The counter is global: other jobs' ptys come and go, so it is read
/// again for up to 3 s while it is above `bound`; the smallest reading is
/// the closest to ours.
fn pty_growth(before: u64, bound: u64) -> (u64, u64) {
    let start = Instant::now();
    let mut least = ptys_in_use();
    while least.saturating_sub(before) > bound && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
        least = least.min(ptys_in_use());
    }
    (least, least.saturating_sub(before))
}

/// The two tests count the host's ptys: one at a time.
static PTY_COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Tasks (processes and threads) that `uid` runs now.
fn tasks_of(uid: u32) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

/// How many guests this host lets the test user run at once, at most
/// `wanted`: each limit that applies, computed and printed. The host's
/// pty limit is not among them: null lines take no pty.
fn guest_budget(wanted: usize, uid: u32) -> usize {
    let mut limits: Vec<(String, u64)> = Vec::new();
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
        .unwrap_or((u64::MAX, u64::MAX));
    if soft != u64::MAX {
        let free = soft.saturating_sub(tasks_of(uid));
        limits.push((
            format!("ulimit -u {soft}, {free} free, {TASKS_PER_GUEST} tasks a guest"),
            free / TASKS_PER_GUEST,
        ));
    }
    // Each guest: one user, uts, ipc and net namespace (the monitor's),
    // two mount namespaces and a pid namespace (the guest's).
    for (name, per) in [
        ("user", 1),
        ("mnt", 2),
        ("pid", 1),
        ("net", 1),
        ("uts", 1),
        ("ipc", 1),
    ] {
        let file = format!("/proc/sys/user/max_{name}_namespaces");
        if let Some(max) = read_number(&file) {
            limits.push((format!("{file} = {max}"), max / per));
        }
    }
    for file in ["/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"] {
        if let Some(max) = read_number(file) {
            let free = max.saturating_sub(tasks_of_all());
            limits.push((
                format!("{file} = {max}, {free} free"),
                free / TASKS_PER_GUEST,
            ));
        }
    }
    let avail = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    if let Some(kib) = avail {
        limits.push((
            format!(
                "MemAvailable {} MiB, {MIB_PER_GUEST} MiB a guest",
                kib / 1024
            ),
            kib / 1024 / MIB_PER_GUEST,
        ));
    }
    // FUSE has no per-user mount limit (fs.mount-max is per mount
    // namespace, and every guest has its own).
    let n = limits
        .iter()
        .map(|(_, n)| usize::try_from(*n).unwrap_or(usize::MAX))
        .fold(wanted, usize::min);
    eprintln!("kernel_scale: {n} guests at once (wanted {wanted}); host limits:");
    for (what, allows) in &limits {
        eprintln!("  {what}: allows {allows}");
    }
    n
}

fn tasks_of_all() -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path().join("task")).ok())
        .map(|t| t.count() as u64)
        .sum()
}

fn guest(test: &str) -> Option<KGuest> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::new(user, INIT))
}

fn uid_of(g: &KGuest) -> u32 {
    g.user
        .ids
        .map_or_else(|| nix::unistd::getuid().as_raw(), |(u, _)| u)
}

#[test]
fn null_lines_are_dev_null_attached_lines_are_ptys_and_a_guest_holds_no_pty_for_them() {
    let Some(g) = guest("null_lines_are_dev_null") else {
        return;
    };
    const N: usize = 8;
    let _one_at_a_time = PTY_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let before = ptys_in_use();
    let mut fleet = Fleet::start(&g, N, &["ssl0=null", "con3=fd:1", "PROBE=1"]);
    let missing = fleet.wait_up(Duration::from_secs(30));
    assert!(missing.is_empty(), "{}", fleet.output(missing[0]));
    // con0 and con3 are attached, and init has a terminal of its own:
    // three ptys a guest; the 14 null consoles and the null serial line
    // take none.
    let (during, grown) = pty_growth(before, 3 * N as u64);
    eprintln!("host ptys: {before} before, {during} while {N} guests run");
    assert!(
        grown <= 3 * N as u64,
        "{N} guests took {grown} host ptys (at most {} expected)",
        3 * N
    );
    let codes = fleet.release_and_wait(Duration::from_secs(30));
    for (i, code) in codes.iter().enumerate() {
        let out = fleet.output(i);
        assert_eq!(*code, Some(0), "{out}");
        // /dev/null is 1:3; a pty slave of devpts has major 136 (0x88).
        for node in ["tty1", "tty15", "ttyS0"] {
            assert!(
                out.contains(&format!("node /dev/{node} 1:3\n")),
                "{node}: {out}"
            );
        }
        assert!(out.contains("node /dev/tty3 88:"), "{out}");
        assert!(out.contains("tty1-write-ok\n"), "{out}");
        assert!(out.contains("tty1-read-bytes 0\n"), "{out}");
        assert!(!out.contains("dropped"), "{out}");
        assert!(out.contains(&format!("SCALE-GO id={i} go\n")), "{out}");
    }
}

#[test]
fn hundreds_of_guests_with_null_consoles_boot_and_halt_together_within_a_minute() {
    let Some(g) = guest("hundreds_of_guests") else {
        return;
    };
    let n = guest_budget(WANTED, uid_of(&g));
    assert!(n > 0, "this host cannot run a single guest");
    let _one_at_a_time = PTY_COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let start = Instant::now();
    let before = ptys_in_use();
    let mut fleet = Fleet::start(&g, n, &[]);
    let missing = fleet.wait_up(Duration::from_secs(60));
    let up = start.elapsed();
    assert!(
        missing.is_empty(),
        "guest {} of {n} did not come up: {}",
        missing[0],
        fleet.output(missing[0])
    );
    // con0 and init's own terminal: two ptys a guest.
    let (during, grown) = pty_growth(before, 2 * n as u64);
    eprintln!(
        "{n} guests up after {:.2} s; host ptys {before} before, {during} with all up",
        up.as_secs_f64()
    );
    let codes = fleet.release_and_wait(Duration::from_secs(60).saturating_sub(start.elapsed()));
    let all = start.elapsed();
    eprintln!("{n} guests halted after {:.2} s", all.as_secs_f64());
    for (i, code) in codes.iter().enumerate() {
        let out = fleet.output(i);
        assert_eq!(*code, Some(0), "guest {i}: {out}");
        assert!(out.contains(&format!("SCALE-GO id={i} go\n")), "{out}");
    }
    assert!(all < Duration::from_secs(60), "took {all:?}");
    assert!(grown <= 2 * n as u64, "{n} guests took {grown} host ptys");
}
