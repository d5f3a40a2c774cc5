//! A stock Debian guest under `linux`, exactly as in the classic UML
//! article (issue 13): a debootstrapped bookworm with sysvinit, booted as
//! a normal user with the article's own command line
//! `linux ubd0=Debian1.cow,root_fs root=/dev/ubda`, driven through a pty
//! as a person at a terminal would.

mod common;

use common::debian::DebianGuest;
use std::time::Duration;

/// A Debian boot on a loaded two-core machine.
const BOOT: Duration = Duration::from_secs(240);
const SHELL: Duration = Duration::from_secs(60);

/// The article's command line, word for word.
const ARTICLE: [&str; 2] = ["ubd0=Debian1.cow,root_fs", "root=/dev/ubda"];

/// Logs in as root (empty password) and waits for the shell.
fn log_in(g: &mut common::debian::PtyGuest, host: &str) {
    g.expect(&format!("{host} login:"), BOOT);
    g.send("root\n");
    g.expect(&format!("root@{host}:~#"), SHELL);
}

/// Runs `cmd` in the guest's shell and waits for its `marker` line.
fn run(g: &mut common::debian::PtyGuest, cmd: &str, marker: &str) -> String {
    g.send(&format!("{cmd}; echo {marker}-$?\n"));
    // The echo of the typed line holds "{marker}-$?", not "{marker}-0".
    g.expect(&format!("{marker}-0"), SHELL);
    g.since_mark()
}

#[test]
fn a_stock_debian_boots_to_login_with_the_articles_command_line_and_keeps_its_changes() {
    let test = "a_stock_debian_boots_to_login_with_the_articles_command_line";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian");
    let boot = g.transcript();
    assert!(
        boot.contains("/dev/ubda: clean, "),
        "the root check: {boot}"
    );
    for bad in [
        "missing or incorrect",
        "maintenance shell",
        "of the root filesystem failed",
        "Read-only file system",
    ] {
        assert!(!boot.contains(bad), "{bad:?} in the boot:\n{boot}");
    }
    g.send("df -h / | tail -n 1\n");
    g.expect("/dev/ubda", SHELL);
    run(&mut g, "echo debian1 > /etc/hostname", "HOSTNAME-WRITTEN");
    g.send("halt\n");
    let code = g.wait(BOOT);
    assert_eq!(code, Some(0), "halt:\n{}", g.transcript());
    assert!(
        g.transcript().contains("reboot: System halted"),
        "{}",
        g.transcript()
    );
    // The next boot of the same COW comes up as debian1.
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian1");
    run(&mut g, "grep -qx debian1 /etc/hostname", "HOSTNAME-KEPT");
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

/// The guest's mconsole socket (the article's command line gives no
/// umid: the only directory under ~/.uml).
fn mconsole_socket(d: &DebianGuest, g: &mut common::debian::PtyGuest) -> std::path::PathBuf {
    g.expect("mconsole (version 2) initialized on ", SHELL);
    let line = g.since_mark();
    let path = line.lines().next().unwrap_or_default().trim();
    assert!(
        path.starts_with(&d.dir.path().display().to_string()),
        "{path}"
    );
    std::path::PathBuf::from(path)
}

/// `uml_mconsole SOCKET ARGS` (ours); its output.
fn mconsole(d: &DebianGuest, sock: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec![sock.to_str().unwrap()];
    all.extend_from_slice(args);
    let (_, out, err) = common::mcon::client(
        &common::bin("uml_mconsole"),
        d.dir.path(),
        d.dir.path(),
        &all,
        None,
    );
    format!("{}{err}", String::from_utf8_lossy(&out))
}

/// Waits until the boot scripts have run (init has started the getty on
/// the console) and returns the guest's mounts then.
fn wait_for_getty(d: &DebianGuest, g: &common::debian::PtyGuest, sock: &std::path::Path) -> String {
    let start = std::time::Instant::now();
    while start.elapsed() < BOOT {
        let children = mconsole(d, sock, &["proc", "1/task/1/children"]);
        let getty = children
            .trim_start_matches("OK")
            .split_whitespace()
            .any(|pid| mconsole(d, sock, &["proc", &format!("{pid}/cmdline")]).contains("getty"));
        if getty {
            return mconsole(d, sock, &["proc", "1/mounts"]);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("no getty within {BOOT:?}; console:\n{}", g.transcript());
}

#[test]
fn debian_passes_checkroot_comes_up_read_write_twice_and_leaves_a_clean_filesystem() {
    let test = "debian_passes_checkroot_comes_up_read_write_twice";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    if !common::have_peers(test, &["dumpe2fs", "e2fsck"]) {
        return;
    }
    for boot in 1..=2 {
        let mut g = d.start(&ARTICLE);
        let sock = mconsole_socket(&d, &mut g);
        let mounts = wait_for_getty(&d, &g, &sock);
        // The kernel mounted it read-only; checkroot found /dev/ubda to be
        // the root's device, skipped fsck (the root was checked before
        // init) and remounted it read-write.
        assert!(
            mounts.contains("/dev/ubda / fuse.ext3 rw,"),
            "boot {boot}: {mounts}\n{}",
            g.transcript()
        );
        let log = g.transcript();
        assert!(
            log.contains("VFS: Mounted root (ext3 filesystem) readonly on device 98:0."),
            "{log}"
        );
        assert!(log.contains("/dev/ubda: clean, "), "{log}");
        assert!(mconsole(&d, &sock, &["halt"]).starts_with("OK"));
        assert_eq!(g.wait(SHELL), Some(0), "{}", g.transcript());
    }
    // What the two boots left, merged: clean, and each boot counted once
    // (checkroot's remount read-write), as the kernel counts.
    let merged = d.path("merged");
    common::run_ok(
        common::bin("uml_moo"),
        [d.path("Debian1.cow").as_os_str(), merged.as_os_str()],
    );
    common::fsck_clean(&merged);
    let h = common::fsimg::dumpe2fs_header(&merged);
    assert_eq!(h["Mount count"], "2", "{h:?}");
    assert_eq!(h["Last mounted on"], "/", "{h:?}");
    assert_eq!(h["Filesystem state"], "clean", "{h:?}");
}

#[test]
fn the_debian_image_has_the_articles_fstab_inittab_and_an_empty_root_password() {
    let test = "the_debian_image_has_the_articles_fstab";
    let Some(image) = common::debian::image(test) else {
        return;
    };
    if !common::have_peers(test, &["debugfs"]) {
        return;
    }
    let cat = |path: &str| {
        let out = common::run_ok(
            common::which("debugfs").unwrap(),
            [
                "-R".as_ref(),
                format!("cat {path}").as_ref(),
                image.as_os_str(),
            ],
        );
        common::stdout(&out)
    };
    assert_eq!(
        cat("/etc/fstab"),
        "/dev/ubda / ext3 defaults,errors=remount-ro 0 1\n"
    );
    assert!(cat("/etc/shadow").starts_with("root::"));
    let inittab = cat("/etc/inittab");
    assert!(
        inittab.contains("\nC0:2345:respawn:/sbin/getty 38400 console\n"),
        "{inittab}"
    );
    assert!(!inittab.contains("\n1:2345:respawn"), "{inittab}");
    assert!(cat("/etc/init.d/checkroot.sh").contains("mountpoint -qx $rootdev"));
    common::fsck_clean(&image);
}

#[test]
fn the_pty_driver_types_into_a_guest_shell_and_sees_its_answer_and_exit_status() {
    let test = "the_pty_driver_types_into_a_guest_shell";
    if !common::kernel::can_boot(test) {
        return;
    }
    let Some(user) = common::kernel::test_user(test) else {
        return;
    };
    let k = common::kernel::KGuest::new(user, "#!/bin/sh\necho SHELL-UP\nexec sh\n");
    let mut g = common::debian::PtyGuest::start(
        &k.path("linux"),
        &[
            "ubd0=p.cow,root_fs",
            "root=/dev/ubda",
            "init=/init",
            "umid=pty",
        ],
        k.dir.path(),
        user,
    );
    g.expect("SHELL-UP", SHELL);
    g.send("echo typed-$((6*7))\n");
    g.expect("typed-42", SHELL);
    g.send("poweroff -f\n");
    assert_eq!(g.wait(SHELL), Some(0), "{}", g.transcript());
    assert!(g.transcript().contains("reboot: System halted"));
}

/// Lines the real kernel's boot and halt of this image never print: the
/// traces of mounts, sysctls and terminal calls a user namespace refuses
/// (issue 13, defects 6 and 7).
const NOISE: [&str; 10] = [
    "/sys/kernel/security: permission denied",
    "/sys/fs/pstore: permission denied",
    "mount: /sys: permission denied",
    "sysctl: permission denied on key",
    "is already running",
    "klogctl error",
    "must be superuser to unmount",
    "mount point not mounted or bad option",
    "dmesg(1) may have more information",
    "failed.",
];

/// Runs `cmd` in the guest's shell; what it printed.
fn output(g: &mut common::debian::PtyGuest, cmd: &str, marker: &str) -> String {
    let before = g.transcript().len();
    run(g, cmd, marker);
    let text = g.transcript();
    let typed = format!("{marker}-$?");
    let out = &text[before..];
    let start = out.find(&typed).map_or(0, |at| at + typed.len());
    let end = out.rfind(&format!("{marker}-0")).unwrap_or(out.len());
    out[start..end].to_string()
}

fn assert_quiet(what: &str, text: &str) {
    for bad in NOISE {
        assert!(!text.contains(bad), "{what}: {bad:?} in:\n{text}");
    }
}

#[test]
fn a_debian_boot_and_halt_print_none_of_the_noise_the_kernel_does_not() {
    let test = "a_debian_boot_and_halt_print_none_of_the_noise";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian");
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
    assert!(g.transcript().contains("reboot: System halted"));
    assert_quiet("the boot and halt", &g.transcript());
}

#[test]
fn free_follows_mem_and_df_lists_no_proc_file_binds() {
    let test = "free_follows_mem_and_df_lists_no_proc_file_binds";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&[ARTICLE[0], ARTICLE[1], "mem=96M"]);
    log_in(&mut g, "debian");
    let free = output(&mut g, "free -m | grep '^Mem:'", "FREE");
    let total: u64 = free
        .lines()
        .find_map(|l| l.split("Mem:").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("free: {free}"));
    assert_eq!(total, 96, "{free}");
    let df = output(&mut g, "df", "DF");
    // (The host's device nodes bound into /dev still make one row: their
    // filesystem is the host's devtmpfs.)
    for row in [
        "/proc/cmdline",
        "/proc/meminfo",
        "/proc/sys/fs/protected_fifos",
    ] {
        assert!(
            !df.lines()
                .any(|l| l.trim_end().ends_with(&format!(" {row}"))),
            "{row} in df:\n{df}"
        );
    }
    assert!(df.contains("/dev/ubda"), "{df}");
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

/// `text` without its terminal control sequences (`ESC [ ... final`),
/// such as the shell's bracketed-paste switches around a command.
fn without_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first number of a `/proc/uptime` text.
fn uptime_secs(text: &str) -> f64 {
    without_escapes(text)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an uptime: {text:?}"))
}

/// `cat /proc/uptime` in the guest's shell counts from the guest's boot
/// (no longer than since `booted`), not from the host's (whose uptime,
/// read afterwards, is larger by more than the guest's age).
fn assert_uptime_from_boot(
    g: &mut common::debian::PtyGuest,
    booted: std::time::Instant,
    marker: &str,
) {
    let text = output(g, "cat /proc/uptime", &format!("UPTIME-{marker}"));
    let guest = uptime_secs(&text);
    let host = uptime_secs(&std::fs::read_to_string("/proc/uptime").unwrap());
    let age = booted.elapsed().as_secs_f64();
    assert!(
        guest <= age + 1.0 && guest + 1.0 < host,
        "the guest's /proc/uptime {guest} s ({text:?}): booted {age} s ago on a host up {host} s"
    );
}

#[test]
fn mconsole_reads_the_guests_mounts_and_uptime_and_reboots_it_cleanly() {
    let test = "mconsole_reads_the_guests_mounts_and_uptime_and_reboots";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let started = std::time::Instant::now();
    let mut g = d.start(&ARTICLE);
    let sock = mconsole_socket(&d, &mut g);
    log_in(&mut g, "debian");
    let mounts = mconsole(&d, &sock, &["proc", "mounts"]);
    assert!(mounts.contains("/dev/ubda / fuse.ext3 rw,"), "{mounts}");
    assert!(mounts.contains(" /proc proc "), "{mounts}");
    let self_mounts = mconsole(&d, &sock, &["proc", "self/mounts"]);
    assert!(self_mounts.contains("/dev/ubda / "), "{self_mounts}");
    let uptime = mconsole(&d, &sock, &["proc", "uptime"]);
    let secs: f64 = uptime
        .trim_start_matches("OK")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("uptime: {uptime}"));
    assert!(
        secs <= started.elapsed().as_secs_f64() + 1.0,
        "uptime {secs} but booted {:?} ago",
        started.elapsed()
    );
    assert_uptime_from_boot(&mut g, started, "FIRST");
    let ubd0 = mconsole(&d, &sock, &["config", "ubd0"]);
    // The COW file as given, the backing file as its header names it.
    assert_eq!(
        ubd0.trim(),
        format!("OK Debian1.cow,{}", d.path("root_fs").display()),
        "config ubd0"
    );
    let eth0 = mconsole(&d, &sock, &["config", "eth0"]);
    assert!(eth0.contains("ERR No get_config routine defined"), "{eth0}");
    // The guest renames itself and drops /etc/hostname: the next boot
    // starts from the kernel's "(none)" again, and nothing renames it.
    run(&mut g, "hostname renamed && rm /etc/hostname", "RENAMED");
    let first = g.transcript().len();
    let rebooted = std::time::Instant::now();
    assert!(mconsole(&d, &sock, &["reboot"]).starts_with("OK"));
    log_in(&mut g, "(none)");
    // Each boot's clocks start again.
    assert_uptime_from_boot(&mut g, rebooted, "SECOND");
    let second = g.transcript()[first..].to_string();
    assert_quiet("the second boot", &second);
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

#[test]
fn a_login_shell_ends_with_its_login_even_when_a_job_holds_the_console() {
    let test = "a_login_shell_ends_with_its_login_even_when_a_job_holds";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian");
    // login (the shell's parent) leads the console's session; it is
    // killed while `sleep 5` is the console's foreground job. On the
    // kernel's console the session's end hangs the terminal up and the
    // shell ends with it; init starts a new getty.
    g.send("(sleep 1; kill -TERM $PPID) & sleep 5\n");
    g.expect("debian login:", BOOT);
    // The new getty may prompt before the old shell has taken its SIGHUP:
    // typing then could feed the old shell, so wait (from the host) until
    // no shell is left in the guest, which is what the hangup must bring.
    let monitor = g.pid().expect("the monitor's pid");
    let deadline = std::time::Instant::now() + SHELL;
    while !descendants_named(monitor, "bash").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the login shell outlived its session's leader: {:?}\n{}",
            descendants_named(monitor, "bash"),
            g.transcript()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    g.send("root\n");
    g.expect("root@debian:~#", SHELL);
    run(
        &mut g,
        "i=0; while [ $(pgrep -c -x bash) -gt 1 ] && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; \
         [ $(pgrep -c -x bash) = 1 ]",
        "ONE-SHELL",
    );
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
    assert_quiet("the halt", &g.transcript());
}

/// The processes named `name` (their `comm`) below `root` in the host's
/// process tree.
fn descendants_named(root: i32, name: &str) -> Vec<i32> {
    let mut parent = std::collections::HashMap::new();
    let mut comm = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parent.insert(pid, ppid);
            comm.insert(pid, stat[open + 1..close].to_string());
        }
    }
    let below = |mut pid: i32| {
        for _ in 0..64 {
            match parent.get(&pid) {
                Some(&p) if p == root => return true,
                Some(&p) if p > 1 => pid = p,
                _ => return false,
            }
        }
        false
    };
    comm.iter()
        .filter(|(pid, c)| c.as_str() == name && below(**pid))
        .map(|(pid, _)| *pid)
        .collect()
}
