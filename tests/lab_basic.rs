//! `uml_lab` on real labs: busybox guests (our `linux`, as the test user)
//! on `uml_switch` collision domains. A 4-machine lab with two routers
//! routes between its hosts, reports its status, stops without leftovers
//! and boots fresh after `clean`; `lab.dep` orders the boots; `test`
//! compares with signatures; bad input is refused before anything starts;
//! startup scripts run from `/hostlab` (the lab directory, over hostfs)
//! and write into it, `/hosthome` is the user's home; and a large lab on
//! 20 domains starts, reaches neighbours and stops.

mod common;
mod lab_support;

use common::kernel::User;
use lab_support::{area, Area};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// True while `pid` runs (a zombie has ended).
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
        })
        .flatten()
        .is_some_and(|c| c != 'Z' && c != 'X')
}

fn sockets_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            found.extend(sockets_under(&e.path()));
        } else if ft.is_socket() {
            found.push(e.path());
        }
    }
    found
}

/// pc1 -A- r1 -B- r2 -C- pc2, static routes; routers note when their
/// startup ran and linger a second, hosts note when theirs ran.
fn two_router_lab(a: &Area) {
    a.write(
        "lab.conf",
        "LAB_DESCRIPTION=\"two routers\"\nLAB_AUTHOR=umlkit\n\
         pc1[0]=A\nr1[0]=A\nr1[1]=B\nr2[0]=B\nr2[1]=C\npc2[0]=C\n",
    );
    a.write("lab.dep", "pc1: r1 r2\npc2: r1 r2\n");
    // The file's change time is the host's wall clock, one clock for
    // every machine (each guest's uptime counts from its own boot).
    let stamp = "touch /root/started\n";
    a.write(
        "r1.startup",
        &format!("ifconfig eth0 10.1.0.254 netmask 255.255.255.0 up\nifconfig eth1 10.2.0.1 netmask 255.255.255.0 up\nroute add -net 10.3.0.0 netmask 255.255.255.0 gw 10.2.0.2\n{stamp}sleep 1\n"),
    );
    a.write(
        "r2.startup",
        &format!("ifconfig eth0 10.2.0.2 netmask 255.255.255.0 up\nifconfig eth1 10.3.0.254 netmask 255.255.255.0 up\nroute add -net 10.1.0.0 netmask 255.255.255.0 gw 10.2.0.1\n{stamp}sleep 1\n"),
    );
    a.write(
        "pc1.startup",
        &format!("ifconfig eth0 10.1.0.1 netmask 255.255.255.0 up\nroute add default gw 10.1.0.254\n{stamp}"),
    );
    a.write(
        "pc2.startup",
        &format!("ifconfig eth0 10.3.0.1 netmask 255.255.255.0 up\nroute add default gw 10.3.0.254\n{stamp}"),
    );
    a.write("shared.startup", "echo 1 > /proc/sys/net/ipv4/ip_forward\n");
    a.write("shared/etc/lab-shared", "from shared\n");
    a.write("pc1/etc/pc1-only", "pc1 tree\n");
    a.write("pc1.shutdown", "echo bye > /root/shutdown-ran\n");
    a.write(
        "_test/pc1.test",
        "cat /etc/pc1-only\nip route | grep default | cut -d' ' -f1-3\n",
    );
    a.write(
        "_test/signature/pc1.user",
        "pc1 tree\ndefault via 10.1.0.254\n",
    );
    a.write(
        "_test/pc2.test",
        "ip route | grep default | cut -d' ' -f1-3\n",
    );
    a.write("_test/signature/pc2.user", "default via 10.3.0.99\n");
    a.chown();
}

fn status_json(a: &Area) -> serde_json::Value {
    serde_json::from_str(&a.ok(None, &["status", "--json"])).unwrap()
}

/// When `m`'s startup script stamped its file: seconds into the day, from
/// `stat -c %y` (`2026-12-04 19:17:43.871363621 +0000`).
fn started_at(a: &Area, m: &str) -> f64 {
    let text = a.ok(
        None,
        &["exec", m, "--", "stat", "-c", "%y", "/root/started"],
    );
    let time = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{m}: {text:?}"));
    time.split(':')
        .map(|f| f.parse::<f64>().unwrap_or_else(|_| panic!("{m}: {text:?}")))
        .fold(0.0, |acc, f| acc * 60.0 + f)
}

#[test]
fn a_two_router_lab_routes_host_to_host_reports_status_stops_clean_and_boots_fresh() {
    let Some(a) = area("a_two_router_lab_routes_host_to_host") else {
        return;
    };
    two_router_lab(&a);
    let t = Instant::now();
    let err = a.start_with(None, None, &[]);
    eprintln!("4 machines up in {:.2} s: {err}", t.elapsed().as_secs_f64());
    assert!(err.contains("LAB_DESCRIPTION: two routers"), "{err}");

    // Host to host across both routers, both ways.
    let ping = a.ok(
        None,
        &[
            "exec", "pc1", "--", "ping", "-c", "3", "-W", "2", "10.3.0.1",
        ],
    );
    assert!(
        ping.contains("3 packets received"),
        "{ping}\n{}",
        a.consoles()
    );
    let ping = a.ok(None, &["exec", "pc2", "--", "ping -c 2 -W 2 10.1.0.1"]);
    assert!(ping.contains("2 packets received"), "{ping}");

    // The trees, the hostname, the image's own init, exit statuses.
    assert_eq!(
        a.ok(None, &["exec", "pc2", "--", "cat /etc/lab-shared"]),
        "from shared\n"
    );
    assert_eq!(
        a.ok(None, &["exec", "pc1", "--", "cat /etc/pc1-only; hostname"]),
        "pc1 tree\npc1\n"
    );
    let none = a.run(None, &["exec", "pc2", "--", "cat /etc/pc1-only"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(common::stderr(&none).contains("No such file"), "{none:?}");
    let log = std::fs::read_to_string(a.lab().join(".uml_lab/m/r1/console.log")).unwrap();
    assert!(log.contains("IMAGE-INIT-RAN"), "{log}");

    // lab.dep: hosts booted after both routers finished (they linger 1 s).
    let (r1, r2) = (started_at(&a, "r1"), started_at(&a, "r2"));
    for pc in ["pc1", "pc2"] {
        let t = started_at(&a, pc);
        assert!(
            t >= r1.max(r2) + 0.9,
            "{pc} started at {t}, routers at {r1} and {r2}"
        );
    }

    // status --json: every machine and domain, running, with pids.
    let st = status_json(&a);
    let machines = st["machines"].as_array().unwrap();
    let names: Vec<&str> = machines
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pc1", "r1", "r2", "pc2"]);
    assert!(machines.iter().all(|m| m["state"] == "running"), "{st}");
    assert_eq!(st["machines"][1]["interfaces"]["eth1"], "B");
    let domains: Vec<&str> = st["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(domains, ["A", "B", "C"]);
    assert!(st["domains"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["state"] == "running"));
    assert_eq!(
        st["domains"][1]["members"],
        serde_json::json!(["r1.eth1", "r2.eth0"])
    );
    let pids: Vec<i64> = machines
        .iter()
        .chain(st["domains"].as_array().unwrap())
        .map(|m| m["pid"].as_i64().unwrap())
        .collect();

    // test: pc1 matches its signature; pc2's names the line that differs.
    let out = a.run(None, &["test"]);
    let text = common::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("pc1: passed"), "{text}");
    assert!(
        text.contains("pc2: FAILED: _test/results/pc2.user line 1: expected 'default via 10.3.0.99', got 'default via 10.3.0.254'"),
        "{text}"
    );
    assert!(a.lab().join("_test/results/pc2.user").is_file());

    // A mark to tell a fresh boot from a reused disk.
    a.ok(None, &["exec", "pc1", "--", "touch /root/old-boot"]);

    // stop: shutdown scripts, halts, no process or socket left.
    let stopped = a.ok(None, &["stop"]);
    assert_eq!(stopped.matches(": halted").count(), 4, "{stopped}");
    for pid in &pids {
        assert!(!alive(*pid), "pid {pid} still runs after stop");
    }
    assert_eq!(
        sockets_under(&a.lab().join(".uml_lab")),
        Vec::<PathBuf>::new()
    );
    let st = status_json(&a);
    assert!(
        st["machines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "stopped"),
        "{st}"
    );
    let cow = a.lab().join(".uml_lab/m/pc1/disk.cow");
    assert!(cow.is_file());
    let ran = common::umlkit(
        "uml_fs",
        [
            "cat".to_string(),
            format!("{},{}", cow.display(), a.image().display()),
            "/root/shutdown-ran".to_string(),
        ],
    );
    assert_eq!(common::stdout(&ran), "bye\n", "{}", common::stderr(&ran));

    // clean removes the disks; the next start boots fresh machines.
    a.ok(None, &["clean"]);
    assert!(!a.lab().join(".uml_lab").exists());
    a.start_with(None, None, &[]);
    let fresh = a.run(None, &["exec", "pc1", "--", "test -e /root/old-boot"]);
    assert_eq!(fresh.status.code(), Some(1), "pc1 kept its old disk");
    let ping = a.ok(None, &["exec", "pc1", "--", "ping -c 1 -W 2 10.3.0.1"]);
    assert!(ping.contains("1 packets received"), "{ping}");
    let forced = a.ok(None, &["stop", "--force"]);
    assert_eq!(forced.matches(": killed").count(), 4, "{forced}");
    assert_eq!(
        sockets_under(&a.lab().join(".uml_lab")),
        Vec::<PathBuf>::new()
    );
}

/// Runs `uml_lab start` on a lab with `conf` (and `dep`, `dirs`), expects
/// one error line containing `want`, and no state made.
#[test]
fn startup_scripts_run_from_hostlab_and_write_into_the_lab_directory() {
    use std::os::unix::fs::MetadataExt;
    let Some(a) = area("startup_scripts_run_from_hostlab_and_write_into_the_lab_directory") else {
        return;
    };
    a.write("lab.conf", "pc1[0]=A\n");
    a.write(
        "pc1.startup",
        "echo \"$0\" > /hostlab/ran-from\ncat /hosthome/home-marker > /hostlab/home.out\n",
    );
    std::fs::write(a.dir.path().join("home-marker"), "at home\n").unwrap();
    a.chown();
    a.start_with(None, None, &[]);
    a.ok(None, &["stop"]);
    let lab = a.lab();
    assert_eq!(
        std::fs::read_to_string(lab.join("ran-from")).unwrap(),
        "/hostlab/pc1.startup\n"
    );
    assert_eq!(
        std::fs::read_to_string(lab.join("home.out")).unwrap(),
        "at home\n"
    );
    let uid = a
        .user
        .ids
        .map_or_else(|| nix::unistd::getuid().as_raw(), |(u, _)| u);
    assert_eq!(std::fs::metadata(lab.join("ran-from")).unwrap().uid(), uid);
    // Read-only /hostlab and no /hosthome when asked.
    a.ok(None, &["clean"]);
    a.start_with(None, None, &["--hostlab-ro", "--no-hosthome"]);
    let probe = a.ok(
        None,
        &[
            "exec",
            "pc1",
            "--",
            "echo x > /hostlab/ro.out 2>/dev/null && echo WROTE; \
         [ -e /hostlab/lab.conf ] && echo LAB-SEEN; \
         [ -e /hosthome/home-marker ] && echo HOME-SEEN; echo DONE",
        ],
    );
    a.ok(None, &["stop", "--force"]);
    assert!(
        probe.contains("LAB-SEEN") && probe.contains("DONE"),
        "{probe}"
    );
    assert!(
        !probe.contains("WROTE") && !probe.contains("HOME-SEEN"),
        "{probe}"
    );
    assert!(!lab.join("ro.out").exists());
}

fn refused(a: &Area, conf: &str, dep: Option<&str>, dirs: &[&str], extra: &[&str], want: &str) {
    let lab = a.lab();
    let _ = std::fs::remove_dir_all(&lab);
    std::fs::create_dir(&lab).unwrap();
    a.write("lab.conf", conf);
    if let Some(d) = dep {
        a.write("lab.dep", d);
    }
    for d in dirs {
        std::fs::create_dir(lab.join(d)).unwrap();
    }
    a.chown();
    let img = a.image().display().to_string();
    let mut args = vec!["start", "--image", img.as_str()];
    args.extend_from_slice(extra);
    let out = a.run(None, &args);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{conf}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("uml_lab: "), "{err}");
    assert!(err.contains(want), "wanted {want:?} in {err}");
    assert!(
        !lab.join(".uml_lab").exists(),
        "state made for a refused lab: {err}"
    );
}

#[test]
fn bad_labs_are_refused_with_one_line_naming_file_and_line_and_nothing_starts() {
    if !common::have_peers("bad_labs_are_refused", &["busybox", "mke2fs"]) {
        return;
    }
    let user = User { ids: None };
    let a = Area::new(user);
    refused(
        &a,
        "a[0]=A\nb 0 A\n",
        None,
        &[],
        &[],
        "lab.conf:2: 'b 0 A': expected KEY=VALUE",
    );
    refused(
        &a,
        "a[0]=A\n\na[16]=B\n",
        None,
        &[],
        &[],
        "lab.conf:3: a[16]: interface number over 15",
    );
    refused(
        &a,
        "a[0]=A\n",
        None,
        &[],
        &["zz"],
        "zz: no such machine in the lab",
    );
    refused(
        &a,
        "a[0]=A\na[image]=/nonexistent/root_fs\n",
        None,
        &[],
        &[],
        "lab.conf:2: a[image]: /nonexistent/root_fs: no such image file",
    );
    refused(
        &a,
        "a[0]=A\n",
        None,
        &["pc 1"],
        &[],
        "pc 1: bad machine directory name",
    );
    refused(
        &a,
        "a[0]=A\nb[0]=A\n",
        Some("a: b\nb: a\n"),
        &[],
        &[],
        "lab.dep:1: dependency cycle: a -> b -> a",
    );
    refused(
        &a,
        "a[0]=A\n",
        Some("a: zz\n"),
        &[],
        &[],
        "lab.dep:1: zz: no such machine in the lab",
    );
    // No image at all, and a default image that does not exist.
    let lab = a.lab();
    let _ = std::fs::remove_dir_all(&lab);
    std::fs::create_dir(&lab).unwrap();
    a.write("lab.conf", "a[0]=A\n");
    let out = a.run(None, &["start"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("a: no root image: give --image IMAGE")
            && err.contains("uml_lab image build IMAGE"),
        "{err}"
    );
    let out = a.run(None, &["start", "--image", "/nonexistent/img"]);
    assert!(common::stderr(&out).contains("/nonexistent/img: no such image file"));
    assert!(!lab.join(".uml_lab").exists());
}

#[test]
fn a_large_lab_on_20_domains_starts_reaches_neighbours_and_stops() {
    let Some(a) = area("a_large_lab_on_20_domains") else {
        return;
    };
    let avail_mib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    let wanted: usize = std::env::var("UMLKIT_LAB_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let n = wanted.min(usize::try_from(avail_mib / 16).unwrap_or(0));
    eprintln!("lab scale: {n} machines on 20 domains (wanted {wanted}, {avail_mib} MiB available)");
    assert!(n >= 40, "this host has room for only {n} machines");
    let mut conf = String::new();
    for i in 0..n {
        let (d, host) = (i % 20, i / 20 + 1);
        conf.push_str(&format!("m{i}[0]=D{d}\n"));
        a.write(
            &format!("m{i}.startup"),
            &format!("ifconfig eth0 10.9.{d}.{host} netmask 255.255.255.0 up\n"),
        );
    }
    a.write("lab.conf", &conf);
    a.chown();
    let t = Instant::now();
    let err = a.start_with(None, None, &[]);
    let up = t.elapsed();
    eprintln!("{n} machines up in {:.2} s: {err}", up.as_secs_f64());
    // Each machine pings the next one on its domain.
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let (d, host) = (i % 20, i / 20 + 1);
                let members = (n - d).div_ceil(20);
                let peer = host % members + 1;
                let cmd =
                    format!("ping -c 1 -W 3 10.9.{d}.{peer} || ping -c 1 -W 3 10.9.{d}.{peer}");
                let out = a.run(
                    None,
                    &["exec", "--timeout", "30", &format!("m{i}"), "--", &cmd],
                );
                if !out.status.success() {
                    failures.lock().unwrap().push(format!(
                        "m{i} -> 10.9.{d}.{peer}: {}{}",
                        common::stdout(&out),
                        common::stderr(&out)
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let st = status_json(&a);
    let pids: Vec<i64> = st["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), n);
    assert_eq!(st["domains"].as_array().unwrap().len(), 20);
    let t = Instant::now();
    let stopped = a.ok(None, &["stop"]);
    eprintln!("{n} machines stopped in {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(stopped.lines().count(), n);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "machines still run after stop"
    );
    assert_eq!(
        sockets_under(&a.lab().join(".uml_lab")),
        Vec::<PathBuf>::new()
    );
}
