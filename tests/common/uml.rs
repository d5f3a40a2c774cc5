//! Booting the real UML kernel (`linux.uml`) from tests.
//!
//! On hosts with AVX-512/AMX CPUs `linux.uml` 6.1 dies at init unless
//! `ptrace(PTRACE_GETREGSET/SETREGSET, .., NT_X86_XSTATE, ..)` fails (so it
//! falls back to FXSAVE) and the guest's glibc keeps off AVX. The harness
//! does both, always: a seccomp filter installed between fork and exec, and
//! a `GLIBC_TUNABLES=` argument that the kernel hands to init. Both are
//! harmless on hosts without the problem.
//!
//! Every guest runs in its own process group with a time limit, after which
//! the whole group is killed: no guest outlives its test.

use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Keeps the guest's glibc on baseline x86-64 code paths.
pub const GLIBC_TUNABLES: &str =
    "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX2,-AVX,-ERMS,-FSRM";

/// A classic BPF program: `ptrace(0x4204|0x4205, _, 0x202, _)` on x86_64
/// fails with EIO, everything else is allowed.
fn noxstate_filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    vec![
        stmt(LD_W_ABS, 4), // seccomp_data.arch
        jump(AUDIT_ARCH_X86_64, 0, 7),
        stmt(LD_W_ABS, 0),  // seccomp_data.nr
        jump(101, 0, 5),    // ptrace
        stmt(LD_W_ABS, 16), // args[0]: the request
        jump(0x4204, 1, 0), // PTRACE_GETREGSET
        jump(0x4205, 0, 2), // PTRACE_SETREGSET
        stmt(LD_W_ABS, 32), // args[2]: the regset
        jump(0x202, 1, 0),  // NT_X86_XSTATE
        stmt(RET_K, SECCOMP_RET_ALLOW),
        stmt(RET_K, SECCOMP_RET_ERRNO | libc::EIO as u32),
    ]
}

/// Adds the seccomp filter and a new process group to `cmd`.
pub fn apply_shim(cmd: &mut Command) {
    cmd.process_group(0);
    shim_before_exec(cmd, false);
}

/// Adds the seccomp filter to `cmd` and makes it lead a new session whose
/// controlling terminal is its standard input (a pty), as when a person
/// starts the kernel from a terminal.
pub fn apply_shim_on_terminal(cmd: &mut Command) {
    shim_before_exec(cmd, true);
}

fn shim_before_exec(cmd: &mut Command, terminal: bool) {
    let filter = noxstate_filter();
    let root = nix::unistd::geteuid().is_root();
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes setsid, ioctl and prctl calls (async-signal-safe) on memory
    // allocated before the fork (`filter`), which stays alive in the
    // child's copy of the heap.
    unsafe {
        cmd.pre_exec(move || {
            if terminal && (libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0) {
                return Err(std::io::Error::last_os_error());
            }
            if !root && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes a busybox root tree in `dir` with `init` as `/init`.
pub fn busybox_tree(dir: &Path, init: &str) {
    for d in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "mnt", "data",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let busybox = super::which("busybox").expect("busybox");
    std::fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    let list = super::run_ok(&busybox, ["--list"]);
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", link).unwrap();
        }
    }
    std::fs::write(dir.join("etc/hostname"), "umlkit-guest\n").unwrap();
    let init_path = dir.join("init");
    std::fs::write(&init_path, init).unwrap();
    std::fs::set_permissions(&init_path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// How a boot ended.
#[derive(Debug)]
pub struct Boot {
    /// The kernel's exit status, `None` when the time limit killed it.
    pub status: Option<ExitStatus>,
    /// The console and the kernel's messages.
    pub output: String,
}

impl Boot {
    /// True when the guest halted and the kernel exited 0.
    pub fn halted(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs a `linux.uml` boot in `dir` with kernel arguments `args`, once
/// more if the first attempt hit the peer's own load failure: on a busy
/// host the real kernel's crypto self-tests time out and it then fails to
/// open its root disk with ENOMEM, before init, so nothing the test checks
/// has run yet. The retry is announced on stderr, and a COW file the failed
/// attempt created is removed first.
pub fn with_peer_retry(dir: &Path, args: &[String], run: impl Fn() -> Boot) -> Boot {
    let cow = args
        .iter()
        .find_map(|a| a.strip_prefix("ubd0="))
        .filter(|d| d.contains([',', ':']))
        .and_then(|d| d.split([',', ':']).next())
        .map(|c| dir.join(c));
    let had_cow = cow.as_ref().is_some_and(|c| c.exists());
    let first = run();
    let flake =
        first.output.contains("VFS: Cannot open root device") && first.output.contains("error -12");
    if !flake {
        return first;
    }
    eprintln!(
        "\n*** linux.uml could not open its root disk (ENOMEM under load); booting once more ***\n"
    );
    if let Some(c) = cow.filter(|_| !had_cow) {
        let _ = std::fs::remove_file(c);
    }
    run()
}

/// Boots `linux.uml` with `args` (plus the console and work-around
/// arguments) in `dir`, killing it after `limit`.
pub fn boot(dir: &Path, args: &[String], limit: Duration) -> Boot {
    with_peer_retry(dir, args, || boot_once(dir, args, limit))
}

fn boot_once(dir: &Path, args: &[String], limit: Duration) -> Boot {
    let kernel = super::which("linux.uml").expect("linux.uml");
    let mut cmd = Command::new(kernel);
    cmd.current_dir(dir)
        .args(args)
        .arg(format!("uml_dir={}", dir.display()))
        .args(["con=null", "con0=fd:0,fd:1", "mem=64M", GLIBC_TUNABLES])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    apply_shim(&mut cmd);
    run_with_limit(cmd, limit)
}

/// Runs `cmd` (already in its own process group) and kills the group after
/// `limit`; collects stdout and stderr.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Boot {
    let mut child = cmd.spawn().expect("spawn guest");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Whatever the guest left in its group goes too.
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let mut output = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
    output.push_str(&String::from_utf8_lossy(&err_reader.join().unwrap()));
    Boot { status, output }
}

/// A scratch directory holding a guest: `root_fs` built from a busybox tree.
pub struct Guest {
    /// The temporary directory; removed on drop.
    pub dir: tempfile::TempDir,
    /// `dir/root_fs`.
    pub image: PathBuf,
}

impl Guest {
    /// Builds a busybox guest whose `/init` is `init`, on an ext3 image of
    /// `size_mb` MiB.
    pub fn new(init: &str, size_mb: u32) -> Guest {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        busybox_tree(&tree, init);
        let image = dir.path().join("root_fs");
        super::mkfs_ext3(&tree, &image, size_mb);
        std::fs::remove_dir_all(&tree).unwrap();
        Guest { dir, image }
    }

    /// Path of a file in the guest's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Boots with `ubd0=DISK` (e.g. `a.cow,root_fs`) and `extra` arguments.
    pub fn boot(&self, disk: &str, extra: &[&str], limit: Duration) -> Boot {
        let mut args = vec![
            format!("ubd0={disk}"),
            "root=/dev/ubda".to_string(),
            "rw".to_string(),
            "init=/init".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        boot(self.dir.path(), &args, limit)
    }
}

/// An `/init` that mounts /proc, runs `body`, syncs and powers off.
pub fn init_script(body: &str) -> String {
    format!(
        "#!/bin/sh\nmount -t proc proc /proc\necho GUEST-UP\n{body}\nsync\necho GUEST-DONE\npoweroff -f\n"
    )
}
