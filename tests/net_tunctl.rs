//! `tunctl` against the kernel and against Debian's tunctl, inside private
//! network namespaces (root only; skipped loudly otherwise).

mod common;

use common::net::{boot_in, chown_tree, ping_body, test_user, NetBoot, Netns, TunModeGuard};
use common::uml::{init_script, Guest};
use std::time::Duration;

fn ours() -> String {
    common::bin("tunctl").display().to_string()
}

fn ready(test: &str, peers: &[&str]) -> bool {
    common::have_root(test) && common::have_peers(test, peers)
}

#[test]
fn tunctl_success_output_is_byte_identical_to_debian() {
    if !ready(
        "tunctl_success_output_is_byte_identical_to_debian",
        &["ip", "tunctl"],
    ) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["-t", "spectap0", "-u", "nobody"],
        &["-b", "-u", "nobody", "-g", "nogroup"],
        &[],
        &["-u", "0x10", "-t", "hx"],
        &["-tt%d"],
        &["-g", "0"],
        &["-b"],
    ];
    for args in cases {
        let theirs_ns = Netns::new();
        let ours_ns = Netns::new();
        let theirs = theirs_ns.run("/usr/bin/tunctl", args);
        let mine = ours_ns.run(ours(), args);
        assert_eq!(
            theirs.status.code(),
            Some(0),
            "debian tunctl {args:?}: {}",
            common::stderr(&theirs)
        );
        assert_eq!(
            mine.status.code(),
            Some(0),
            "our tunctl {args:?}: {}",
            common::stderr(&mine)
        );
        assert_eq!(
            common::stdout(&mine),
            common::stdout(&theirs),
            "stdout of {args:?}"
        );
        assert!(mine.stderr.is_empty(), "{}", common::stderr(&mine));
    }
}

#[test]
fn tunctl_makes_a_persistent_tap_with_owner_and_group_then_deletes_it() {
    if !ready(
        "tunctl_makes_a_persistent_tap_with_owner_and_group_then_deletes_it",
        &["ip"],
    ) {
        return;
    }
    let ns = Netns::new();
    let out = ns.run_ok(ours(), &["-t", "spectap0", "-u", "nobody", "-g", "nogroup"]);
    assert_eq!(
        common::stdout(&out),
        "Set 'spectap0' persistent and owned by uid 65534 gid 65534\n"
    );
    let link = ns.link("spectap0").expect("spectap0 exists");
    assert!(link.contains("tun type tap"), "{link}");
    assert!(link.contains("pi off"), "{link}");
    assert!(
        link.contains("persist on user nobody group nogroup"),
        "{link}"
    );
    let out = ns.run_ok(ours(), &["-d", "spectap0"]);
    assert_eq!(common::stdout(&out), "Set 'spectap0' nonpersistent\n");
    assert!(
        ns.link("spectap0").is_none(),
        "spectap0 still exists after -d"
    );
}

#[test]
fn tunctl_usage_errors_match_debian_apart_from_the_program_path() {
    if !ready(
        "tunctl_usage_errors_match_debian_apart_from_the_program_path",
        &["tunctl"],
    ) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["-x"],
        &["-h"],
        &["-t"],
        &["extra"],
        &["-u", "nosuchuserxyz"],
        &["-g", "nosuchgrp"],
    ];
    for args in cases {
        let theirs = common::run("/usr/bin/tunctl", *args);
        let mine = common::run(ours(), *args);
        assert_eq!(mine.status.code(), Some(1), "{args:?}");
        assert_eq!(theirs.status.code(), Some(1), "{args:?}");
        assert_eq!(
            common::stderr(&mine).replace(&ours(), "PROG"),
            common::stderr(&theirs).replace("/usr/bin/tunctl", "PROG"),
            "stderr of {args:?}"
        );
        assert!(mine.stdout.is_empty());
    }
}

#[test]
fn tunctl_help_lists_every_option_and_exits_zero() {
    let out = common::umlkit("tunctl", ["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = common::stdout(&out);
    for opt in ["-b", "-t", "-u", "-g", "-d", "-f", "--help"] {
        assert!(text.contains(opt), "--help lacks {opt}: {text}");
    }
}

#[test]
fn tunctl_reports_the_originals_silent_failures_as_errors() {
    if !ready(
        "tunctl_reports_the_originals_silent_failures_as_errors",
        &["ip"],
    ) {
        return;
    }
    let ns = Netns::new();
    let long = ns.run(ours(), &["-t", "abcdefghijklmnopqrstu"]);
    assert_eq!(long.status.code(), Some(1));
    assert!(
        common::stderr(&long).contains("too long"),
        "{}",
        common::stderr(&long)
    );
    assert!(
        ns.link("abcdefghijklmno").is_none(),
        "a truncated device was created"
    );

    let missing = ns.run(ours(), &["-d", "nosuchtap"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        common::stderr(&missing).contains("no such network interface"),
        "{}",
        common::stderr(&missing)
    );
    assert!(ns.link("nosuchtap").is_none());

    let lo = ns.run(ours(), &["-t", "lo"]);
    assert_eq!(lo.status.code(), Some(1));
    assert!(
        common::stderr(&lo).contains("'lo' exists and is not a TAP device"),
        "{}",
        common::stderr(&lo)
    );

    let clone = ns.run(ours(), &["-f", "/nonexistent"]);
    assert_eq!(clone.status.code(), Some(1));
    assert!(
        common::stderr(&clone)
            .starts_with("tunctl: Failed to open '/nonexistent' : No such file or directory"),
        "{}",
        common::stderr(&clone)
    );
}

#[test]
fn tunctl_as_a_normal_user_says_that_privilege_is_needed() {
    if !ready(
        "tunctl_as_a_normal_user_says_that_privilege_is_needed",
        &["ip", "setpriv"],
    ) {
        return;
    }
    let ns = Netns::new();
    let (_, uid, gid) = test_user();
    let out = ns.run(
        "setpriv",
        &[
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_string(),
            ours(),
            "-t".to_string(),
            "usertap".to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(err.contains("root or CAP_NET_ADMIN is needed"), "{err}");
    assert!(ns.link("usertap").is_none());
}

#[test]
fn guest_run_as_a_normal_user_pings_the_host_through_a_tap_made_by_tunctl() {
    let test = "guest_run_as_a_normal_user_pings_the_host_through_a_tap_made_by_tunctl";
    if !ready(test, &["ip", "setpriv", "linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    let ns = Netns::new();
    let (user, uid, gid) = test_user();
    let out = ns.run_ok(ours(), &["-t", "tap0", "-u", &user]);
    assert_eq!(
        common::stdout(&out),
        format!("Set 'tap0' persistent and owned by uid {uid}\n")
    );
    ns.run_ok("ip", &["addr", "add", "10.0.1.1/24", "dev", "tap0"]);
    ns.run_ok("ip", &["link", "set", "tap0", "up"]);

    let _tun_mode = TunModeGuard::open_to_users();
    let guest = Guest::new(&init_script(&ping_body("10.0.1.2", "10.0.1.1", 10, 0)), 16);
    chown_tree(guest.dir.path(), uid, gid);
    let how = NetBoot {
        as_user: Some((uid, gid)),
        ..Default::default()
    };
    let boot = boot_in(
        &ns,
        &guest,
        "a.cow,root_fs",
        &["eth0=tuntap,tap0"],
        &how,
        Duration::from_secs(90),
    );
    assert!(
        boot.output.contains("PING-OK 10.0.1.1"),
        "guest could not ping the host:\n{}",
        boot.output
    );
    assert!(boot.halted(), "guest did not halt: {:?}", boot.status);
}
