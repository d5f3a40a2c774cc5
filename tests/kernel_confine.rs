//! A hostile guest against the host user's files, and the durability
//! contract: probes run by the guest's root, each a finding of the
//! security review (issue 12) that must fail, and writes that `sync`,
//! `syncfs`, `fsync`, `fdatasync` or a remount made durable surviving a
//! SIGKILL of the monitor.

mod common;

use common::kernel::{boot_args, can_boot, test_user, KGuest, Running};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo GUEST-UP MODE=$MODE
case "$MODE" in
  ptsattack)
    if [ ! -e /attacked ]; then
      touch /attacked
      umount /dev/console /dev/tty0
      umount -l /dev/pts
      rmdir /dev/pts && mkdir /dev/pts
      for n in 0 1 2 3; do ln -s "$VICTIM" /dev/pts/$n; done
      sync
      echo REBOOTING
      reboot -f
    fi
    echo SECOND-BOOT
    echo PWNED-BY-GUEST
    read -t 1 line; echo "READ:$line"
    ;;
  fds)
    for n in 3 4 5 6 7 8 9; do
      [ -e /proc/1/fd/$n ] && echo "FD$n-OPEN $(ls -l /proc/1/fd/$n)"
    done
    cat /proc/1/fd/7 2>/dev/null
    ls /proc/1/fd/8/ 2>/dev/null
    echo FDS-DONE
    ;;
  keys) /keyprobe; echo KEYS-DONE ;;
  procattack)
    while umount -l /proc 2>/dev/null; do :; done
    ln -s "$SECRET" /proc/version
    mkfifo /proc/meminfo
    echo READY; sleep 60 ;;
  sync) echo sync-data > /f; sync; echo SYNCED; sleep 60 ;;
  syncf) echo syncf-data > /f; sync -f /f; echo SYNCED; sleep 60 ;;
  fsync) echo fsync-data | dd of=/f conv=fsync 2>/dev/null; echo SYNCED; sleep 60 ;;
  fdatasync) echo fdatasync-data > /f; sync -d /f; echo SYNCED; sleep 60 ;;
  remount) echo remount-data > /f; mount -o remount,ro /; echo SYNCED; sleep 60 ;;
  straced) echo x > /f; sync; echo SYNCED ;;
  show) echo "CONTENT:$(cat /f)" ;;
  userns) unshare -U true && echo USERNS-MADE || echo USERNS-REFUSED ;;
  dmesg) echo DMESG-START; dmesg; echo "DMESG-END $?" ;;
esac
poweroff -f
"#;

/// A C probe (static, so the busybox guest can run it): reads a key from
/// the session keyring it would share with the host, then plants one.
const KEYPROBE: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#define KEY_SPEC_SESSION_KEYRING -3
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_SEARCH 10
#define KEYCTL_READ 11
int main(void) {
    long ses = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    printf("SESSION %ld\n", ses);
    long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", "umlkit-secret", 0);
    if (k < 0) { printf("SECRET-NOT-FOUND\n"); }
    else {
        char buf[64] = {0};
        long n = syscall(SYS_keyctl, KEYCTL_READ, k, buf, sizeof buf - 1);
        printf("SECRET-FOUND %ld %s\n", n, n > 0 ? buf : "");
    }
    long p = syscall(SYS_add_key, "user", "umlkit-planted", "guest", 5, KEY_SPEC_SESSION_KEYRING);
    printf("PLANTED %ld\n", p);
    fflush(stdout);
    return 0;
}
"#;

fn guest(test: &str, extra: impl FnOnce(&Path)) -> Option<KGuest> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::with_tree(user, |tree| {
        common::uml::busybox_tree(tree, INIT);
        extra(tree);
    }))
}

fn args<'a>(umid: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![umid];
    v.extend_from_slice(extra);
    boot_args("ubd0=a.cow,root_fs", &v)
}

fn code(b: &common::uml::Boot) -> Option<i32> {
    b.status.and_then(|s| s.code())
}

/// A file of the invoking user's that the guest must not reach, in a
/// directory of the user's outside /tmp (the monitor's own namespace
/// covers /tmp with its staging tmpfs): like a file in the user's home.
fn user_file(g: &KGuest, name: &str, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("umlkit-home")
        .tempdir_in("/var/tmp")
        .unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    if let Some((uid, gid)) = g.user.ids {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    (dir, p)
}

#[test]
fn a_planted_pts_symlink_does_not_become_the_next_boots_console() {
    let Some(g) = guest("planted_pts_symlink", |_| {}) else {
        return;
    };
    let (_home, victim) = user_file(&g, "bashrc", "# the user's own file\n");
    let victim_arg = format!("VICTIM={}", victim.display());
    let b = g.run(&args("umid=cpts", &["MODE=ptsattack", &victim_arg]), LIMIT);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "# the user's own file\n",
        "the guest wrote into the host file through its console:\n{}",
        b.output
    );
    assert!(b.output.contains("REBOOTING"), "{}", b.output);
    assert!(
        b.output.contains("SECOND-BOOT") && b.output.contains("PWNED-BY-GUEST"),
        "the second boot's console did not reach the host terminal:\n{}",
        b.output
    );
    assert_eq!(code(&b), Some(0), "{}", b.output);
}

#[test]
fn descriptors_of_the_invoking_process_do_not_reach_the_guest() {
    let Some(g) = guest("inherited_descriptors", |_| {}) else {
        return;
    };
    let (home, secret) = user_file(&g, "secret", "TOP-SECRET-CONTENT\n");
    let mut cmd = g.command(&args("umid=cfds", &["MODE=fds"]));
    let file = std::fs::File::open(&secret).unwrap();
    let dir = std::fs::File::open(home.path()).unwrap();
    use std::os::fd::AsRawFd;
    let (f, d) = (file.as_raw_fd(), dir.as_raw_fd());
    // SAFETY: dup2 between fork and exec on descriptors this process owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(f, 7) < 0 || libc::dup2(d, 8) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let b = common::uml::run_with_limit(cmd, LIMIT);
    let guest_side = b.output.split("GUEST-UP").nth(1).unwrap_or_default();
    assert!(guest_side.contains("FDS-DONE"), "{}", b.output);
    assert!(!guest_side.contains("TOP-SECRET"), "{}", b.output);
    assert!(!guest_side.contains("-OPEN"), "{}", b.output);
    assert!(
        !guest_side.contains("secret"),
        "the guest listed the user's directory:\n{}",
        b.output
    );
    assert_eq!(code(&b), Some(0), "{}", b.output);
}

#[test]
fn the_hosts_session_keyring_is_not_the_guests() {
    if !common::have_peers("session_keyring", &["cc"]) {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("keyprobe.c"), KEYPROBE).unwrap();
    let exe = src.path().join("keyprobe");
    let out = common::run(
        "cc",
        [
            "-static".as_ref(),
            "-O".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
            src.path().join("keyprobe.c").as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let Some(g) = guest("session_keyring", |tree| {
        std::fs::copy(&exe, tree.join("keyprobe")).unwrap();
    }) else {
        return;
    };
    let mut cmd = g.command(&args("umid=ckey", &["MODE=keys"]));
    // SAFETY: keyring system calls between fork and exec; no allocation.
    unsafe {
        cmd.pre_exec(|| {
            // A session of this run's own, holding the user's secret.
            libc::syscall(libc::SYS_keyctl, 1, c"umlkit-test-session".as_ptr());
            let payload = b"HOST-KEY-PAYLOAD";
            let r = libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                c"umlkit-secret".as_ptr(),
                payload.as_ptr(),
                payload.len(),
                -3i32,
            );
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let b = common::uml::run_with_limit(cmd, LIMIT);
    let out = b.output.replace('\r', "");
    assert!(out.contains("KEYS-DONE"), "{out}");
    assert!(out.contains("SECRET-NOT-FOUND"), "{out}");
    assert!(!out.contains("HOST-KEY-PAYLOAD"), "{out}");
    let planted = out
        .lines()
        .find_map(|l| l.strip_prefix("PLANTED "))
        .and_then(|n| n.trim().parse::<i64>().ok());
    assert!(
        planted.is_some_and(|p| p > 0),
        "the guest's own keyring works:\n{out}"
    );
}

fn mconsole(g: &KGuest, umid: &str, cmd: &str, limit: Duration) -> (Option<i32>, String) {
    let sock = g.path(&format!(".uml/{umid}/mconsole"));
    let mut c = std::process::Command::new(common::bin("uml_mconsole"));
    c.arg(&sock)
        .args(cmd.split(' '))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let b = common::uml::run_with_limit(c, limit);
    (b.status.and_then(|s| s.code()), b.output)
}

#[test]
fn mconsole_proc_follows_no_guest_symlink_and_no_fifo_holds_it() {
    let Some(g) = guest("mconsole_proc_attack", |_| {}) else {
        return;
    };
    let (_home, secret) = user_file(&g, "secret", "TOP-SECRET-CONTENT\n");
    let secret_arg = format!("SECRET={}", secret.display());
    let r = g.start(&args("umid=cproc", &["MODE=procattack", &secret_arg]));
    assert!(r.wait_for("READY", LIMIT), "{}", r.output());
    let (_, out) = mconsole(&g, "cproc", "proc version", LIMIT);
    assert!(!out.contains("TOP-SECRET"), "{out}");
    let started = Instant::now();
    let (status, out) = mconsole(&g, "cproc", "proc meminfo", Duration::from_secs(10));
    assert!(
        status.is_some() && started.elapsed() < Duration::from_secs(8),
        "proc on a FIFO hung: {out}"
    );
    let (status, out) = mconsole(&g, "cproc", "version", Duration::from_secs(10));
    assert_eq!(status, Some(0), "the mconsole stopped answering: {out}");
    let _ = mconsole(&g, "cproc", "halt", LIMIT);
    let (code, out) = r.finish(LIMIT);
    assert_eq!(code, Some(0), "{out}");
}

/// Boots `MODE=mode`, kills the monitor with SIGKILL as soon as the guest
/// says its write was synced, and returns what the next boot finds.
fn synced_then_killed(test: &str, mode: &str, umid: &str) -> Option<String> {
    let g = guest(test, |_| {})?;
    let mode_arg = format!("MODE={mode}");
    let umid_arg = format!("umid={umid}");
    let r: Running = g.start(&args(&umid_arg, &[&mode_arg]));
    assert!(r.wait_for("SYNCED", LIMIT), "{}", r.output());
    nix::sys::signal::kill(r.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let (killed, _) = r.finish(LIMIT);
    assert_eq!(killed, Some(137));
    let b = g.run(&args(&umid_arg, &["MODE=show"]), LIMIT);
    assert_eq!(code(&b), Some(0), "{}", b.output);
    Some(b.output)
}

#[test]
fn a_write_before_sync_survives_a_sigkill_right_after() {
    if let Some(out) = synced_then_killed("sync_sigkill", "sync", "dsync") {
        assert!(out.contains("CONTENT:sync-data"), "{out}");
    }
}

#[test]
fn a_write_before_sync_f_survives_a_sigkill_right_after() {
    if let Some(out) = synced_then_killed("syncfs_sigkill", "syncf", "dsyncf") {
        assert!(out.contains("CONTENT:syncf-data"), "{out}");
    }
}

#[test]
fn a_write_with_fsync_survives_a_sigkill_right_after() {
    if let Some(out) = synced_then_killed("fsync_sigkill", "fsync", "dfsync") {
        assert!(out.contains("CONTENT:fsync-data"), "{out}");
    }
}

#[test]
fn a_write_before_fdatasync_survives_a_sigkill_right_after() {
    if let Some(out) = synced_then_killed("fdatasync_sigkill", "fdatasync", "dfdata") {
        assert!(out.contains("CONTENT:fdatasync-data"), "{out}");
    }
}

#[test]
fn a_write_before_a_read_only_remount_survives_a_sigkill_right_after() {
    if let Some(out) = synced_then_killed("remount_sigkill", "remount", "dremount") {
        assert!(out.contains("CONTENT:remount-data"), "{out}");
    }
}

/// strace -f of the monitor: the guest's `sync` must be held while a
/// monitor thread flushes the COW file, and return only after.
#[test]
fn the_cow_file_is_flushed_on_the_host_before_the_guests_sync_returns() {
    if !common::have_peers("sync_flushes_the_cow", &["strace"]) {
        return;
    }
    let Some(g) = guest("sync_flushes_the_cow", |_| {}) else {
        return;
    };
    let trace = g.path("trace");
    let linux = g.path("linux");
    let mut cmd = g.command(&args("umid=dtrace", &["MODE=straced"]));
    // Run `strace -f -o TRACE linux ...` as the test user instead.
    let argv: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut inner = vec![
        "-f".to_string(),
        "-qq".to_string(),
        "-e".to_string(),
        "trace=sync,fdatasync,fsync".to_string(),
        "-o".to_string(),
        trace.display().to_string(),
    ];
    match g.user.ids {
        Some(_) => {
            // setpriv ARGS -- linux ...: put strace after the `--`.
            let split = argv.iter().position(|a| a == "--").unwrap();
            let mut c = std::process::Command::new(cmd.get_program());
            c.args(&argv[..=split])
                .arg(common::which("strace").unwrap());
            c.args(&inner).args(&argv[split + 1..]);
            cmd = c;
        }
        None => {
            inner.push(linux.display().to_string());
            inner.extend(argv);
            let mut c = std::process::Command::new("strace");
            c.args(&inner);
            cmd = c;
        }
    }
    cmd.current_dir(g.path("."))
        .env("HOME", g.path("."))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let b = common::uml::run_with_limit(cmd, LIMIT);
    assert!(b.output.contains("SYNCED"), "{}", b.output);
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(" sync(") && l.contains("unfinished"))
        .unwrap_or_else(|| panic!("the guest's sync was not held:\n{text}"));
    let pid = lines[start].split_whitespace().next().unwrap();
    let end = lines
        .iter()
        .skip(start)
        .position(|l| l.starts_with(pid) && l.contains("sync resumed"))
        .map(|i| i + start)
        .unwrap_or_else(|| panic!("no end of the guest's sync:\n{text}"));
    let flushed = lines[start..end]
        .iter()
        .any(|l| !l.starts_with(pid) && l.contains("fdatasync") && l.contains("= 0"));
    assert!(
        flushed,
        "no host fdatasync between the guest's sync and its return:\n{text}"
    );
}

#[test]
fn new_user_namespaces_in_the_guest_only_when_the_command_line_asks() {
    let Some(g) = guest("nested_userns", |_| {}) else {
        return;
    };
    let b = g.run(&args("umid=cuserns", &["MODE=userns"]), LIMIT);
    assert!(b.output.contains("USERNS-REFUSED"), "{}", b.output);
    let b = g.run(
        &args("umid=cuserns", &["MODE=userns", "umlkit.nested_userns"]),
        LIMIT,
    );
    assert!(b.output.contains("USERNS-MADE"), "{}", b.output);
}

#[test]
fn dmesg_shows_the_guests_boot_log_and_never_the_hosts_kernel_log() {
    let Some(g) = guest("dmesg_boot_log", |_| {}) else {
        return;
    };
    let b = g.run(&args("umid=cdmesg", &["MODE=dmesg"]), LIMIT);
    let log = b
        .output
        .split("DMESG-START")
        .nth(1)
        .and_then(|s| s.split("DMESG-END").next())
        .unwrap_or_else(|| panic!("{}", b.output));
    assert!(b.output.contains("DMESG-END 0"), "{}", b.output);
    assert!(log.contains("] Linux version "), "{log}");
    assert!(log.contains("umlkit"), "{log}");
    assert!(log.contains("Kernel command line: "), "{log}");
    let host = nix::sys::utsname::uname().unwrap();
    let host_banner = format!("Linux version {}", host.release().to_string_lossy());
    assert!(
        !log.contains(&host_banner),
        "the host's log reached the guest:\n{log}"
    );
}
