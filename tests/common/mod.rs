//! The test harness shared by the integration tests: peer and root checks
//! that skip loudly (and fail under `UMLKIT_REQUIRE_PEERS=1`), paths of our
//! binaries, guest images built with the real mke2fs and busybox, and a way
//! to boot the real UML kernel (`linux.uml`) with a time limit.
#![allow(dead_code)]

pub mod debian;
pub mod fsimg;
pub mod kernel;
pub mod mcon;
pub mod net;
pub mod uml;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// True when `UMLKIT_REQUIRE_PEERS=1`: every skip becomes a failure.
pub fn peers_required() -> bool {
    std::env::var("UMLKIT_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Says loudly that `test` is skipped and why; panics instead when peers
/// are required.
pub fn skip(test: &str, why: &str) {
    if peers_required() {
        panic!("{test}: cannot run: {why} (UMLKIT_REQUIRE_PEERS=1 turns this skip into a failure)");
    }
    eprintln!("\n*** SKIPPED {test}: {why} ***\n");
}

/// Where `program` is on PATH (also /sbin and /usr/sbin, where e2fsprogs
/// lives), if anywhere.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// True when every program in `programs` is installed; otherwise skips
/// `test` loudly (or fails under `UMLKIT_REQUIRE_PEERS=1`).
pub fn have_peers(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(
        test,
        &format!("peer program(s) not installed: {}", missing.join(", ")),
    );
    false
}

/// True when running as root; otherwise skips `test` loudly.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(test, "needs root");
    false
}

/// The path of one of this package's binaries, built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "binary {} not built (run through cargo test)",
        path.display()
    );
    path
}

/// Runs `program` with `args` and returns its output.
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()))
}

/// Runs one of our binaries.
pub fn umlkit<I, S>(name: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(bin(name), args)
}

/// Copies an executable the tests will run, through `cp`: the copy's
/// writable descriptor then lives only in `cp`, never in this process,
/// where a test thread forking meanwhile would hand it to its child until
/// that child's exec, and the exec of the copy fails with ETXTBSY ("Text
/// file busy") in the meantime.
pub fn copy_executable(from: &Path, to: &Path) {
    run_ok("cp", [from.as_os_str(), to.as_os_str()]);
}

/// Runs a command and panics with its output unless it succeeds.
pub fn run_ok<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref().to_owned();
    let out = run(&program, args);
    assert!(
        out.status.success(),
        "{} failed ({}):\nstdout: {}\nstderr: {}",
        program.to_string_lossy(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Standard error of `out` as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output of `out` as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sets a file's modification time to `secs` since the epoch.
pub fn set_mtime(path: &Path, secs: i64) {
    let times = nix::sys::time::TimeSpec::new(secs, 0);
    nix::sys::stat::utimensat(
        None,
        path,
        &times,
        &times,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .expect("utimensat");
}

/// A byte pattern that differs at every offset and between seeds, so that a
/// sector read from the wrong place is noticed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Asserts that `e2fsck -fn` (check everything, change nothing) finds
/// `image` clean.
pub fn fsck_clean(image: &Path) {
    let out = run(
        which("e2fsck").expect("e2fsck"),
        [OsStr::new("-fn"), image.as_os_str()],
    );
    assert!(
        out.status.success(),
        "e2fsck -fn {}:\n{}{}",
        image.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// Builds an ext3 image of `size_mb` MiB at `image` from the directory
/// `root` with the real mke2fs (`mke2fs -t ext3 -d`).
pub fn mkfs_ext3(root: &Path, image: &Path, size_mb: u32) {
    mkfs_from("ext3", root, image, &format!("{size_mb}M"));
}

/// `mke2fs -q -F -t KIND -d ROOT IMAGE SIZE` (SIZE as mke2fs reads it,
/// e.g. `64M`), with mke2fs's defaults for KIND.
pub fn mkfs_from(kind: &str, root: &Path, image: &Path, size: &str) {
    mkfs_from_with(kind, &[], root, image, size);
}

/// [`mkfs_from`] with `extra` mke2fs options (`-O orphan_file`, `-I 256`).
pub fn mkfs_from_with(kind: &str, extra: &[&str], root: &Path, image: &Path, size: &str) {
    let mut args: Vec<&OsStr> = ["-q", "-F", "-t", kind].map(OsStr::new).to_vec();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("-d"),
        root.as_os_str(),
        image.as_os_str(),
        OsStr::new(size),
    ]);
    run_ok(which("mke2fs").expect("mke2fs"), args);
}

/// Runs `program` with standard output a pipe whose reader goes away:
/// before the program starts when `read_first` is 0 (every write fails
/// with EPIPE), else after reading `read_first` bytes. Returns its exit
/// status and standard error.
pub fn run_into_closed_pipe<I, S>(
    program: impl AsRef<OsStr>,
    args: I,
    read_first: usize,
) -> (std::process::ExitStatus, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    use std::io::Read;
    use std::process::Stdio;
    let mut command = Command::new(program.as_ref());
    command.args(args).stderr(Stdio::piped());
    let child = if read_first == 0 {
        let (reader, writer) = nix::unistd::pipe().expect("pipe");
        drop(reader);
        command.stdout(Stdio::from(writer)).spawn()
    } else {
        command.stdout(Stdio::piped()).spawn().map(|mut child| {
            let mut out = child.stdout.take().expect("stdout pipe");
            let mut first = vec![0u8; read_first];
            out.read_exact(&mut first).expect("first bytes of output");
            child
        })
    };
    let out = child
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.as_ref().to_string_lossy()))
        .wait_with_output()
        .expect("wait");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts that a run from [`run_into_closed_pipe`] ended as a tool should
/// when its reader goes away: status 0 (not a panic, not killed by SIGPIPE),
/// nothing on standard error.
pub fn assert_quiet_success_on_closed_pipe(what: &str, run: (std::process::ExitStatus, String)) {
    let (status, err) = run;
    assert!(!err.contains("panicked"), "{what} panicked: {err}");
    assert_eq!(status.code(), Some(0), "{what}: {status}, stderr: {err}");
    assert!(err.is_empty(), "{what} wrote to stderr: {err}");
}
