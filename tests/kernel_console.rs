//! The guest's console behaves as the real kernel's: it never closes
//! (whatever opens it next is heard), pid 1 has no controlling terminal,
//! and a shell that takes the console as its terminal gets job control
//! and Ctrl-C.

mod common;

use common::kernel::{boot_args, busybox_guest, KGuest};
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo GUEST-UP
case "$MODE" in
  reopen)
    echo before
    exec >/dev/null 2>&1 </dev/null
    sleep 1
    echo hello-again >/dev/console
    ;;
  ctrlc)
    # What getty does: a new session whose terminal is the console (in
    # the foreground: an asynchronous list would start with SIGINT
    # ignored).
    setsid -c sh -c 'trap : INT; exec </dev/console >/dev/console 2>&1; echo SLEEPING; sleep 30; echo "AFTER-SLEEP-$?"'
    ;;
  pid1tty)
    # Opening the console must not make it init's terminal: a new session
    # can then still take it (busybox setsid -c fails when another
    # session holds it).
    exec 3</dev/console
    if setsid -c true </dev/console; then echo CONSOLE-FREE; else echo CONSOLE-TAKEN; fi
    ;;
esac
poweroff -f
"#;

fn guest(test: &str) -> Option<KGuest> {
    busybox_guest(test, INIT)
}

fn args<'a>(umid: &'a str, mode: &'a str) -> Vec<&'a str> {
    boot_args("ubd0=a.cow,root_fs", &[umid, mode])
}

#[test]
fn the_console_is_heard_again_after_every_guest_process_closed_it() {
    let Some(g) = guest("console_reopened") else {
        return;
    };
    let b = g.run(&args("umid=kre", "MODE=reopen"), LIMIT);
    assert!(b.output.contains("before"), "{}", b.output);
    assert!(
        b.output.contains("hello-again"),
        "the console went silent after it was closed:\n{}",
        b.output
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
}

#[test]
fn opening_the_console_does_not_make_it_init_s_controlling_terminal() {
    let Some(g) = guest("pid1_no_console_tty") else {
        return;
    };
    let b = g.run(&args("umid=kp1", "MODE=pid1tty"), LIMIT);
    assert!(
        b.output.contains("CONSOLE-FREE"),
        "init took the console as its terminal:\n{}",
        b.output
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
}

#[test]
fn ctrl_c_on_the_console_interrupts_the_shell_s_command_not_init() {
    let Some(g) = guest("console_ctrl_c") else {
        return;
    };
    let out_path = g.path("console.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut cmd = g.command(&args("umid=kcc", "MODE=ctrlc"));
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let mut child = cmd.spawn().unwrap();
    let read = || {
        let mut s = String::new();
        let _ = std::fs::File::open(&out_path).and_then(|mut f| f.read_to_string(&mut s));
        s.replace('\r', "")
    };
    let wait = |marker: &str| {
        let start = Instant::now();
        while start.elapsed() < LIMIT {
            if read().contains(marker) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    assert!(wait("SLEEPING"), "{}", read());
    std::thread::sleep(Duration::from_millis(200));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    let interrupted = wait("AFTER-SLEEP-130");
    let halted = wait("reboot: System halted");
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    assert!(interrupted, "Ctrl-C did not interrupt sleep:\n{}", read());
    assert!(halted, "the guest did not go on to halt:\n{}", read());
}
