//! Test helpers for the net tests: private network namespaces that are
//! deleted even when the test fails, running commands inside them, a test
//! user, and booting the real UML kernel inside a namespace (optionally as
//! another user, with extra environment).

use super::uml::{apply_shim, run_with_limit, Boot, Guest, GLIBC_TUNABLES};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A network namespace `umlkit-test-<random>`, deleted on drop.
pub struct Netns {
    /// Its name, for `ip netns exec`.
    pub name: String,
}

impl Netns {
    /// Creates a fresh namespace with `lo` up.
    pub fn new() -> Netns {
        let name = format!("umlkit-test-{:08x}", rand32());
        super::run_ok("ip", ["netns", "add", &name]);
        let ns = Netns { name };
        ns.run_ok("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// A `Command` running `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program args` inside the namespace.
    pub fn run<S: AsRef<OsStr>>(&self, program: impl AsRef<OsStr>, args: &[S]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs `program args` inside the namespace and panics unless it succeeds.
    pub fn run_ok<S: AsRef<OsStr>>(&self, program: impl AsRef<OsStr>, args: &[S]) -> Output {
        let program = program.as_ref().to_owned();
        let out = self.run(&program, args);
        assert!(
            out.status.success(),
            "{} in {} failed ({}):\nstdout: {}\nstderr: {}",
            program.to_string_lossy(),
            self.name,
            out.status,
            super::stdout(&out),
            super::stderr(&out)
        );
        out
    }

    /// The output of `ip -d link show DEV` inside the namespace, or `None`
    /// when the device does not exist.
    pub fn link(&self, dev: &str) -> Option<String> {
        let out = self.run("ip", &["-d", "link", "show", dev]);
        out.status.success().then(|| super::stdout(&out))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs in the namespace, then delete it.
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output();
        if let Ok(out) = pids {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A random 32-bit number (no extra crates needed).
pub fn rand32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_ne_bytes(b) ^ std::process::id()
}

/// The name, uid and gid of an unprivileged test user, created with
/// `useradd` when missing.
pub fn test_user() -> (String, u32, u32) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = "umlkit-test";
    if nix::unistd::User::from_name(name).ok().flatten().is_none() {
        let _ = Command::new("useradd")
            .args(["-M", "-r", "-s", "/usr/sbin/nologin", name])
            .status();
    }
    let user = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .expect("test user umlkit-test (useradd failed)");
    (name.to_string(), user.uid.as_raw(), user.gid.as_raw())
}

/// Hands `path` and everything below it to `uid:gid`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    super::run_ok(
        "chown",
        [
            "-R".to_string(),
            format!("{uid}:{gid}"),
            path.display().to_string(),
        ],
    );
}

/// How to run a guest inside a namespace.
#[derive(Default)]
pub struct NetBoot<'a> {
    /// Run the kernel as this uid:gid (through `setpriv`), else as root.
    pub as_user: Option<(u32, u32)>,
    /// Extra environment for the kernel process (e.g. PATH for uml_net).
    pub env: Vec<(&'a str, String)>,
}

/// Boots `guest` (disk `disk`, extra kernel arguments `extra`) inside `ns`,
/// killed after `limit`; same shim and process-group kill as `uml::boot`.
pub fn boot_in(
    ns: &Netns,
    guest: &Guest,
    disk: &str,
    extra: &[&str],
    how: &NetBoot<'_>,
    limit: Duration,
) -> Boot {
    let dir = guest.dir.path();
    let disk_arg = vec![format!("ubd0={disk}")];
    super::uml::with_peer_retry(dir, &disk_arg, || {
        boot_in_once(ns, guest, disk, extra, how, limit)
    })
}

fn boot_in_once(
    ns: &Netns,
    guest: &Guest,
    disk: &str,
    extra: &[&str],
    how: &NetBoot<'_>,
    limit: Duration,
) -> Boot {
    let kernel = super::which("linux.uml").expect("linux.uml");
    let dir = guest.dir.path();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name]);
    if let Some((uid, gid)) = how.as_user {
        cmd.args([
            "setpriv",
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
        ]);
        cmd.env("HOME", dir);
    }
    cmd.arg(kernel)
        .current_dir(dir)
        .args([
            format!("ubd0={disk}"),
            "root=/dev/ubda".to_string(),
            "rw".to_string(),
            "init=/init".to_string(),
        ])
        .args(extra)
        .arg(format!("uml_dir={}", dir.display()))
        .args(["con=null", "con0=fd:0,fd:1", "mem=64M", GLIBC_TUNABLES])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &how.env {
        cmd.env(k, v);
    }
    apply_shim(&mut cmd);
    run_with_limit(cmd, limit)
}

/// A guest `/init` body that brings eth0 up as `me`, waits until `peer`
/// answers (up to `tries` single pings), then checks with `ping -c 3` and
/// prints `PING-OK <peer>` on success; it lingers `linger` seconds so a peer
/// can finish its own pings.
pub fn ping_body(me: &str, peer: &str, tries: u32, linger: u32) -> String {
    format!(
        "ifconfig lo 127.0.0.1 up\n\
         ifconfig eth0 {me} netmask 255.255.255.0 up\n\
         i=0; while [ $i -lt {tries} ]; do ping -c 1 -W 1 {peer} >/dev/null 2>&1 && break; i=$((i+1)); done\n\
         ping -c 3 -W 2 {peer} && echo PING-OK {peer}\n\
         sleep {linger}\n"
    )
}

/// Makes `/dev/net/tun` usable by normal users (mode 0666, as distributions
/// ship it and CI sets it) for as long as the guard lives; the old mode is
/// put back on drop.
pub struct TunModeGuard(Option<u32>);

impl TunModeGuard {
    /// Widens the mode if needed.
    pub fn open_to_users() -> TunModeGuard {
        use std::os::unix::fs::PermissionsExt;
        let path = Path::new("/dev/net/tun");
        let Ok(meta) = std::fs::metadata(path) else {
            return TunModeGuard(None);
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o006 == 0o006 {
            return TunModeGuard(None);
        }
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
        TunModeGuard(Some(mode))
    }
}

impl Drop for TunModeGuard {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if let Some(mode) = self.0 {
            let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode));
        }
    }
}
