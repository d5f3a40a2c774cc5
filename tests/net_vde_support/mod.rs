//! Helpers shared by the VDE, capture and VXLAN switch tests
//! (`tests/net_vde*.rs`, `tests/net_pcap*.rs`, `tests/net_vxlan*.rs`): our
//! switch inside a namespace with its output in files, and our guest
//! kernel `linux` run inside a namespace as the test user.
#![allow(dead_code)]

use crate::common;
use common::kernel::{KGuest, User};
use common::net::Netns;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one of our guests may run.
pub const LIMIT: Duration = Duration::from_secs(40);

/// `uml_switch ARGS` inside a namespace, stdout and stderr in files in a
/// temp dir (mode 0755, so the test user can reach sockets below it);
/// killed on drop.
pub struct Sw {
    /// The process, until stopped.
    pub child: Option<Child>,
    /// The temp dir (holds `out`, `err`, and whatever the test puts there).
    pub dir: tempfile::TempDir,
}

impl Sw {
    /// Starts the switch with `args` (use [`Sw::path`] names in them) and
    /// waits until `ready` exists.
    pub fn start(ns: &Netns, args: &[String], ready: Option<&str>) -> Sw {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Self::start_in(ns, dir, args, ready)
    }

    /// [`Sw::start`] in a directory made beforehand.
    pub fn start_in(
        ns: &Netns,
        dir: tempfile::TempDir,
        args: &[String],
        ready: Option<&str>,
    ) -> Sw {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("@", &dir.path().display().to_string()))
            .collect();
        let child = ns
            .command(common::bin("uml_switch"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .expect("start uml_switch");
        let sw = Sw {
            child: Some(child),
            dir,
        };
        if let Some(r) = ready {
            let p = sw.path(r);
            let start = Instant::now();
            while !p.exists() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{} never appeared; switch stderr:\n{}",
                    p.display(),
                    sw.stderr()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        sw
    }

    /// A path in the switch's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The switch's stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.path("out")).unwrap_or_default()
    }

    /// The switch's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("err")).unwrap_or_default()
    }

    /// SIGTERM, and the exit status (killed after 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("switch already stopped");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("switch did not exit on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the switch's stdout contains `text`.
    pub fn wait_log(&self, text: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.stdout().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Sw {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A background helper process (`vde_plug`, `tcpdump`), killed on drop.
pub struct Bg(pub Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `/init` of a busybox guest: `body`, then power off.
pub fn init(body: &str) -> String {
    format!("#!/bin/sh\n{body}poweroff -f\n")
}

/// Runs our guest `g` inside `ns` as its user with `eth`, to its end
/// (killed after [`LIMIT`]); the console output, CRs removed.
pub fn run_ours(ns: &Netns, g: &KGuest, eth: &str) -> String {
    use std::os::unix::process::CommandExt;
    let args = common::kernel::boot_args("ubd0=a.cow,root_fs", &[eth]);
    let mut cmd = match g.user.ids {
        Some((uid, gid)) => {
            let mut c = ns.command(common::which("setpriv").unwrap_or_else(|| "setpriv".into()));
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(g.path("linux"));
            c
        }
        None => ns.command(g.path("linux")),
    };
    cmd.args(&args)
        .current_dir(g.dir.path())
        .env("HOME", g.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    common::uml::run_with_limit(cmd, LIMIT)
        .output
        .replace('\r', "")
}

/// The test user for our guests (root CI runs them as `umlkit-test`),
/// `None` after a loud skip when guests cannot boot here.
pub fn guest_user(test: &str) -> Option<User> {
    if !common::have_root(test) || !common::kernel::can_boot(test) {
        return None;
    }
    common::kernel::test_user(test)
}

/// Waits until `path` exists (10 s).
pub fn wait_path(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
