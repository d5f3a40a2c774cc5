//! The guest kernel `linux` booting busybox guests as an unprivileged user:
//! halt, panics, bad command lines, signals, SIGKILL cleanup, mconsole.

mod common;

use common::kernel::{can_boot, fingerprint, processes_with, test_user, KGuest};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

const INIT: &str = r#"#!/bin/sh
echo "GUEST-UP MODE=$MODE args=$*"
case "$MODE" in
  exit) exit 3 ;;
  sleep) while :; do sleep 1; done ;;
  look) ls /dev; cat /proc/cmdline; id -u; cat /written 2>/dev/null ;;
  write) echo written-by-boot-1 > /written; sync ;;
  rmrf) rm -rf /bin /sbin ;;
  reboot) reboot -f ;;
  shell) exec sh ;;
  writes) i=0; while :; do echo "$i" > /f$((i % 50)); i=$((i + 1)); [ $i = 500 ] && sync && echo SYNCED; done ;;
  check) cat /f0 ;;
  flood) i=0; while [ $i -lt 300 ]; do echo "tty2-line-$i" > /dev/tty2; i=$((i + 1)); done; echo tty2-last > /dev/tty2 ;;
  lines) echo on-tty2 > /dev/tty2; echo on-ttyS0 > /dev/ttyS0; ls /dev ;;
  uptime) echo "UPTIME $(cat /proc/uptime)" ;;
esac
poweroff -f
"#;

fn guest(test: &str) -> Option<KGuest> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::new(user, INIT))
}

fn args<'a>(disk: &'a str, umid: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        disk,
        "root=/dev/ubda",
        "rw",
        "init=/init",
        umid,
        "con=null",
        "con0=fd:0,fd:1",
    ];
    v.extend_from_slice(extra);
    v
}

/// Starts `g` on `a.cow` with `MODE=sleep` (plus `extra`) and waits until
/// its init says it is up.
fn start_sleeping(g: &KGuest, umid: &str, extra: &[&str]) -> common::kernel::Running {
    let mut more = vec!["MODE=sleep"];
    more.extend_from_slice(extra);
    let r = g.start(&args("ubd0=a.cow,root_fs", umid, &more));
    assert!(r.wait_for("GUEST-UP", LIMIT), "{}", r.output());
    r
}

#[test]
fn boots_to_a_shell_command_and_halts_with_status_0_leaving_the_backing_file_unchanged() {
    let Some(g) = guest("boots_to_a_shell_command_and_halts") else {
        return;
    };
    let before = fingerprint(&g.path("root_fs"));
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=k1", &["MODE=look", "plainarg"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    let out = &b.output;
    for line in [
        "Creating \"a.cow\" as COW file for \"root_fs\"",
        "VFS: Mounted root (ext3 filesystem) on device 98:0.",
        "Run /init as init process",
        "GUEST-UP MODE=look args=plainarg",
        "Unknown kernel command line parameters \"plainarg MODE=look\", will be passed to user space.",
        "reboot: System halted",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // The guest's /dev and /proc/cmdline are ours; uid 0 inside.
    assert!(
        out.contains("console") && out.contains("urandom") && out.contains("pts"),
        "{out}"
    );
    assert!(
        out.contains("\nubd0=a.cow,root_fs root=/dev/ubda rw init=/init"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == "0"),
        "guest id -u is 0:\n{out}"
    );
    assert!(out.trim_end().ends_with("reboot: System halted"), "{out}");
    assert_eq!(
        fingerprint(&g.path("root_fs")),
        before,
        "backing file changed"
    );
    assert!(g.path("a.cow").is_file());
    assert!(!g.path(".uml/k1").exists(), "umid dir left after halt");
}

/// The first number of a `/proc/uptime` text.
fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an uptime: {text:?}"))
}

#[test]
fn the_guests_uptime_counts_from_its_own_boot_not_the_hosts() {
    let Some(g) = guest("the_guests_uptime_counts_from_its_own_boot") else {
        return;
    };
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    let started = std::time::Instant::now();
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=up", &["MODE=uptime"]),
        LIMIT,
    );
    assert!(b.halted(), "{}", b.output);
    let line = b
        .output
        .lines()
        .find_map(|l| l.strip_prefix("UPTIME "))
        .unwrap_or_else(|| panic!("{}", b.output));
    let guest = uptime_secs(line);
    assert!(
        guest <= started.elapsed().as_secs_f64() + 1.0 && guest + 1.0 < host,
        "the guest's uptime {guest} s: booted {:?} ago on a host up {host} s\n{}",
        started.elapsed(),
        b.output
    );
}

#[test]
fn quiet_silences_the_boot_log_but_not_the_guest() {
    let Some(g) = guest("quiet_silences_the_boot_log") else {
        return;
    };
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kq", &["quiet", "MODE=halt"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    assert!(b.output.contains("GUEST-UP MODE=halt"));
    assert!(!b.output.contains("Kernel command line"), "{}", b.output);
    assert!(!b.output.contains("Run /init"), "{}", b.output);
}

#[test]
fn init_exiting_is_the_kill_init_panic_with_status_134() {
    let Some(g) = guest("init_exiting_is_the_kill_init_panic") else {
        return;
    };
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=k2", &["MODE=exit"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    assert!(
        b.output
            .contains("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300"),
        "{}",
        b.output
    );
    assert!(
        g.path(".uml/k2/pid").exists(),
        "the kernel leaves the umid dir after a panic"
    );
}

#[test]
fn a_missing_init_is_the_no_working_init_panic() {
    if !can_boot("a_missing_init_is_the_no_working_init_panic") {
        return;
    }
    let Some(user) = test_user("a_missing_init_is_the_no_working_init_panic") else {
        return;
    };
    let g = KGuest::with_tree(user, |t| {
        std::fs::create_dir_all(t.join("bin")).unwrap();
        std::fs::create_dir_all(t.join("proc")).unwrap();
        std::fs::copy(common::which("busybox").unwrap(), t.join("bin/busybox")).unwrap();
    });
    let b = g.run(&["ubd0=n.cow,root_fs", "root=/dev/ubda", "umid=k3"], LIMIT);
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    for p in ["/sbin/init", "/etc/init", "/bin/init", "/bin/sh"] {
        assert!(
            b.output.contains(&format!("Run {p} as init process")),
            "{}",
            b.output
        );
    }
    assert!(b.output.contains(
        "Kernel panic - not syncing: No working init found.  Try passing init= option to kernel. See Linux Documentation/admin-guide/init.rst for guidance."
    ), "{}", b.output);
    let b = g.run(
        &["ubd0=n.cow,root_fs", "init=/nonexistent", "umid=k4"],
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    assert!(
        b.output
            .contains("Kernel panic - not syncing: Requested init /nonexistent failed (error -2)."),
        "{}",
        b.output
    );
}

#[test]
fn bad_command_lines_fail_cleanly_and_change_no_file() {
    let Some(g) = guest("bad_command_lines_fail_cleanly") else {
        return;
    };
    let before = fingerprint(&g.path("root_fs"));
    std::fs::write(g.path("notext"), vec![0u8; 1 << 20]).unwrap();
    if let Some((uid, gid)) = g.user.ids {
        std::os::unix::fs::chown(g.path("notext"), Some(uid), Some(gid)).unwrap();
    }
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["ubd0=m.cow,nosuch_fs"],
            134,
            "Couldn't stat \"nosuch_fs\" : err = 2",
        ),
        (
            vec!["ubd0=a.cow,root_fs", "root=/dev/sda1"],
            134,
            "VFS: Cannot open root device \"sda1\"",
        ),
        (
            vec!["ubd0=a.cow,root_fs", "con0=bogus"],
            1,
            "setup_one_line failed for device 0",
        ),
        (vec!["ubd4x=foo"], 1, "Expected '=' or flag letter"),
        (vec!["ubd0=notext"], 134, "No filesystem could mount root"),
    ];
    for (a, code, text) in cases {
        let mut all = a.clone();
        all.extend(["init=/init", "umid=kb", "MODE=halt"]);
        let b = g.run(&all, LIMIT);
        assert_eq!(
            b.status.and_then(|s| s.code()),
            Some(code),
            "{a:?}: {}",
            b.output
        );
        assert!(
            b.output.contains(text),
            "{a:?}: missing {text:?} in {}",
            b.output
        );
        assert!(!b.output.contains("GUEST-UP"), "{a:?} booted");
        assert!(
            !g.path("m.cow").exists(),
            "a COW over a missing backing file was created"
        );
        assert!(!g.path(".uml/kb").exists(), "{a:?} left its umid dir");
    }
    assert!(!g.path("a.cow").exists(), "a failed boot created a COW");
    // A COW whose backing file changed: refused, COW untouched.
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kc", &["MODE=halt"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    common::set_mtime(&g.path("root_fs"), 978_307_200);
    let cow = fingerprint(&g.path("a.cow"));
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kc", &["MODE=halt"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    assert!(b.output.contains("mtime mismatch ("), "{}", b.output);
    assert_eq!(fingerprint(&g.path("a.cow")), cow);
    assert_eq!(fingerprint(&g.path("root_fs")).0, before.0);
    assert!(std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .all(|l| !l.contains("fuse.ext3")));
}

#[test]
fn a_cow_in_use_is_refused_and_sigterm_exits_1_removing_the_umid_dir() {
    let Some(g) = guest("a_cow_in_use_is_refused") else {
        return;
    };
    let mark = format!("KMARK=inuse{}", std::process::id());
    let first = start_sleeping(&g, "umid=ku", &[&mark]);
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kv", &["MODE=halt"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    assert!(
        b.output
            .contains("F_SETLK failed, file already locked by pid"),
        "{}",
        b.output
    );
    assert!(b.output.contains("error -11"), "{}", b.output);
    assert!(g.path(".uml/ku/mconsole").exists());
    nix::sys::signal::kill(first.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let (code, out) = first.finish(LIMIT);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("reboot:"), "SIGTERM prints nothing: {out}");
    assert!(!g.path(".uml/ku").exists());
    assert!(processes_with(&mark).is_empty());
}

#[test]
fn sigkill_of_the_monitor_leaves_no_guest_process() {
    let Some(g) = guest("sigkill_of_the_monitor_leaves_no_guest_process") else {
        return;
    };
    let mark = format!("KMARK=kill{}", std::process::id());
    let r = start_sleeping(&g, "umid=kk", &[&mark]);
    assert!(
        !processes_with(&mark).is_empty(),
        "the marker finds the guest"
    );
    nix::sys::signal::kill(r.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let (code, _) = r.finish(LIMIT);
    assert_eq!(code, Some(137));
    let start = std::time::Instant::now();
    while !processes_with(&mark).is_empty() && start.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        processes_with(&mark).is_empty(),
        "guest processes survived the monitor"
    );
}

fn mconsole(client: &std::path::Path, sock: &std::path::Path, cmd: &str) -> (i32, String) {
    let out = std::process::Command::new(client)
        .arg(sock)
        .args(cmd.split(' '))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn mconsole_from_our_client_and_debians_drives_the_guest() {
    let Some(g) = guest("mconsole_drives_the_guest") else {
        return;
    };
    let mut clients = vec![common::bin("uml_mconsole")];
    if let Some(deb) = ["/usr/bin/uml_mconsole"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
    {
        clients.push(deb);
    } else {
        common::skip(
            "mconsole_from_debians_client",
            "uml-utilities not installed",
        );
    }
    for (i, client) in clients.iter().enumerate() {
        let umid = format!("umid=km{i}");
        let r = start_sleeping(&g, &umid, &[]);
        let sock = g.path(&format!(".uml/km{i}/mconsole"));
        let (code, out) = mconsole(client, &sock, "version");
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("OK Linux "), "{out}");
        let (_, out) = mconsole(client, &sock, "proc meminfo");
        assert!(out.contains("MemTotal:"), "{out}");
        assert_eq!(mconsole(client, &sock, "stop").1.trim(), "OK stopped");
        assert!(mconsole(client, &sock, "stop")
            .1
            .contains("Already stopped"));
        assert_eq!(mconsole(client, &sock, "go").0, 0);
        assert!(mconsole(client, &sock, "go").1.contains("Not stopped"));
        // The COW file as given, its backing file as the header names it
        // (absolute), as the kernel answers.
        assert_eq!(
            mconsole(client, &sock, "config ubd0").1.trim(),
            format!("OK a.cow,{}", g.path("root_fs").display())
        );
        assert_eq!(mconsole(client, &sock, "cad").0, 0);
        assert_eq!(mconsole(client, &sock, "halt").0, 0);
        let (code, out) = r.finish(LIMIT);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("reboot: System halted"), "{out}");
        assert!(!sock.exists());
    }
}

#[test]
fn mconsole_reboot_boots_again_in_the_same_process() {
    let Some(g) = guest("mconsole_reboot_boots_again") else {
        return;
    };
    let r = start_sleeping(&g, "umid=kr", &[]);
    let sock = g.path(".uml/kr/mconsole");
    assert_eq!(mconsole(&common::bin("uml_mconsole"), &sock, "reboot").0, 0);
    let start = std::time::Instant::now();
    while r.output().matches("GUEST-UP").count() < 2 && start.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        r.output().contains("reboot: Restarting system"),
        "{}",
        r.output()
    );
    assert_eq!(r.output().matches("GUEST-UP").count(), 2, "{}", r.output());
    assert_eq!(mconsole(&common::bin("uml_mconsole"), &sock, "halt").0, 0);
    let (code, _) = r.finish(LIMIT);
    assert_eq!(code, Some(0));
}

#[test]
fn without_newuidmap_only_guest_root_is_mapped_and_the_boot_log_says_so() {
    let Some(g) = guest("without_newuidmap_only_guest_root_is_mapped") else {
        return;
    };
    let empty = g.path("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let mut cmd = g.command(&args("ubd0=a.cow,root_fs", "umid=kn", &["MODE=look"]));
    cmd.env("PATH", &empty);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let b = common::uml::run_with_limit(cmd, LIMIT);
    let out = b.output.replace('\r', "");
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{out}");
    assert!(out.contains("only guest uid 0 is mapped"), "{out}");
    assert!(
        out.lines().any(|l| l.trim() == "0"),
        "guest id -u is 0:\n{out}"
    );
}

#[test]
fn a_guest_reboot_with_noreboot_exits_0() {
    let Some(g) = guest("a_guest_reboot_with_noreboot_exits_0") else {
        return;
    };
    let b = g.run(
        &args(
            "ubd0=a.cow,root_fs",
            "umid=ko",
            &["MODE=reboot", "noreboot"],
        ),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    assert_eq!(b.output.matches("GUEST-UP").count(), 1, "{}", b.output);
    assert!(
        b.output.contains("reboot: Restarting system"),
        "{}",
        b.output
    );
}

#[test]
fn mconsole_notify_announces_the_socket() {
    let Some(g) = guest("mconsole_notify_announces_the_socket") else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let listen = g.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&listen).unwrap();
    std::fs::set_permissions(&listen, std::fs::Permissions::from_mode(0o777)).unwrap();
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let notify = format!("mconsole=notify:{}", listen.display());
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kt", &["MODE=halt", &notify]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    let mut buf = [0u8; 1024];
    let n = sock.recv(&mut buf).expect("a notification");
    let note = umlkit::mconsole::protocol::Notification::decode(&buf[..n]).unwrap();
    assert_eq!(note.kind, umlkit::mconsole::protocol::NotifyKind::Socket);
    let text = String::from_utf8_lossy(note.text()).into_owned();
    assert!(text.ends_with(".uml/kt/mconsole"), "{text}");
    assert_eq!(note.data.last(), Some(&0), "the payload ends in a NUL");
    // A panic is announced too, with its message.
    let b = g.run(
        &args(
            "ubd0=a.cow,root_fs",
            "umid=kt2",
            &["init=/nonexistent", &notify],
        ),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let n = sock.recv(&mut buf).expect("a notification");
        let note = umlkit::mconsole::protocol::Notification::decode(&buf[..n]).unwrap();
        kinds.push((note.kind, String::from_utf8_lossy(note.text()).into_owned()));
    }
    assert_eq!(kinds[1].0, umlkit::mconsole::protocol::NotifyKind::Panic);
    assert_eq!(kinds[1].1, "Requested init /nonexistent failed (error -2).");
}

#[test]
fn console_input_reaches_the_guest_and_sighup_is_ignored() {
    let Some(g) = guest("console_input_reaches_the_guest") else {
        return;
    };
    let mut cmd = g.command(&args("ubd0=a.cow,root_fs", "umid=ki", &["MODE=shell"]));
    let out = g.path("shell.out");
    let file = std::fs::File::create(&out).unwrap();
    cmd.stdin(std::process::Stdio::piped())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let mut child = cmd.spawn().unwrap();
    let read = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .replace('\r', "")
    };
    let start = std::time::Instant::now();
    while !read().contains("GUEST-UP") && start.elapsed() < LIMIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"echo typed-$((6*7))\npoweroff -f\n")
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > LIMIT {
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = read();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(text.contains("typed-42"), "{text}");
    assert!(text.contains("reboot: System halted"), "{text}");
}

#[test]
fn other_consoles_and_serial_lines_reach_their_channels() {
    let Some(g) = guest("other_consoles_and_serial_lines") else {
        return;
    };
    let b = g.run(
        &args(
            "ubd0=a.cow,root_fs",
            "umid=kl",
            &["MODE=lines", "con2=fd:2", "ssl0=pts", "ssl1=port:9"],
        ),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    assert!(b.output.contains("on-tty2"), "{}", b.output);
    assert!(
        b.output
            .contains("Serial line 0 assigned device '/dev/pts/"),
        "{}",
        b.output
    );
    assert!(
        b.output
            .contains("ttyS1: channel type 'port' is not supported"),
        "{}",
        b.output
    );
    for node in ["tty1", "tty15", "ttyS0"] {
        assert!(
            b.output.split_whitespace().any(|w| w == node),
            "no /dev/{node}: {}",
            b.output
        );
    }
}

#[test]
fn everything_written_to_a_line_reaches_its_channel_before_the_halt() {
    // Each echo opens and closes the line, and the last is followed at once
    // by poweroff -f: the halt must wait for the line's output as it waits
    // for con0's.
    let Some(g) = guest("everything_written_to_a_line_reaches_its_channel") else {
        return;
    };
    let b = g.run(
        &args(
            "ubd0=a.cow,root_fs",
            "umid=kf",
            &["MODE=flood", "con2=fd:2"],
        ),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    let lines: Vec<&str> = b
        .output
        .lines()
        .filter(|l| l.starts_with("tty2-"))
        .collect();
    let expected: Vec<String> = (0..300)
        .map(|i| format!("tty2-line-{i}"))
        .chain(["tty2-last".to_string()])
        .collect();
    assert_eq!(lines, expected, "{}", b.output);
}

#[test]
fn a_host_without_user_namespaces_gets_one_clear_error_and_no_file_is_touched() {
    let test = "a_host_without_user_namespaces_gets_one_clear_error";
    let Some(g) = guest(test) else {
        return;
    };
    if !common::have_peers(test, &["unshare", "setpriv"]) {
        return;
    }
    // max_user_namespaces is per user namespace: 0 inside a fresh one.
    let script = "echo 0 > /proc/sys/user/max_user_namespaces && exec ./linux ubd0=a.cow,root_fs init=/init umid=kz";
    let mut cmd = match g.user.ids {
        Some((uid, gid)) => {
            let mut c = std::process::Command::new(common::which("setpriv").unwrap());
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"])
                .arg(common::which("unshare").unwrap());
            c
        }
        None => std::process::Command::new(common::which("unshare").unwrap()),
    };
    cmd.args(["-U", "-r", "sh", "-c", script])
        .current_dir(g.dir.path())
        .env("HOME", g.dir.path());
    let out = cmd.output().unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("linux: cannot create a user namespace"),
        "{err}"
    );
    assert!(err.contains("/proc/sys/user/max_user_namespaces"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!g.path("a.cow").exists(), "a COW was created");
    assert!(!g.path(".uml").exists(), "the umid directory was made");
}

#[test]
fn help_and_version_exit_0_without_booting() {
    let out = common::run(common::bin("linux"), ["--help"]);
    assert!(out.status.success());
    let text = common::stdout(&out);
    for opt in [
        "ubd<n><flags>=",
        "root=",
        "init=",
        "mem=",
        "umid=",
        "uml_dir=",
        "con[0-15]=",
        "quiet",
    ] {
        assert!(text.contains(opt), "--help lacks {opt}");
    }
    let out = common::run(common::bin("linux"), ["--version", "--help"]);
    assert!(out.status.success());
    assert_eq!(common::stdout(&out).lines().count(), 1);
    let out = common::run(common::bin("linux"), ["mem=1M"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("Too few physical memory!"));
}

// Scenarios that need guest writes: ready for the journaling writer.

#[test]
fn the_same_cow_boots_again_and_sees_its_own_writes() {
    let Some(g) = guest("the_same_cow_boots_again") else {
        return;
    };
    let w = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kw", &["MODE=write"]),
        LIMIT,
    );
    assert_eq!(w.status.and_then(|s| s.code()), Some(0), "{}", w.output);
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kw", &["MODE=look"]),
        LIMIT,
    );
    assert!(b.output.contains("written-by-boot-1"), "{}", b.output);
}

#[test]
fn rm_rf_bin_sbin_then_halt_gives_the_no_working_init_panic_next_boot() {
    let Some(g) = guest("rm_rf_bin_sbin") else {
        return;
    };
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kx", &["MODE=rmrf"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    let b = g.run(&["ubd0=a.cow,root_fs", "root=/dev/ubda", "umid=kx"], LIMIT);
    assert_eq!(b.status.and_then(|s| s.code()), Some(134), "{}", b.output);
    assert!(b.output.contains("No working init found."));
    std::fs::remove_file(g.path("a.cow")).unwrap();
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kx", &["MODE=halt"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
}

#[test]
fn sigkill_during_writes_leaves_nothing_and_the_next_boot_recovers_the_journal() {
    let Some(g) = guest("sigkill_during_writes") else {
        return;
    };
    let mark = format!("KMARK=writes{}", std::process::id());
    let r = g.start(&args(
        "ubd0=a.cow,root_fs",
        "umid=kw3",
        &["MODE=writes", &mark],
    ));
    assert!(r.wait_for("SYNCED", LIMIT), "{}", r.output());
    nix::sys::signal::kill(r.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let (code, _) = r.finish(LIMIT);
    assert_eq!(code, Some(137));
    let start = std::time::Instant::now();
    while !processes_with(&mark).is_empty() && start.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(processes_with(&mark).is_empty(), "guest processes survived");
    let b = g.run(
        &args("ubd0=a.cow,root_fs", "umid=kw3", &["MODE=check"]),
        LIMIT,
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    assert!(b.output.contains("recovery complete"), "{}", b.output);
    let merged = g.path("merged.img");
    let out = common::run(
        common::bin("uml_moo"),
        [g.path("a.cow").as_os_str(), merged.as_os_str()],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::fsck_clean(&merged);
}
