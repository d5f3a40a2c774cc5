//! `uml_switch -vde DIR`: a VDE switch directory, served to VDE clients
//! (`vde_plug`, and a VDE client written here from vdeplug4's protocol)
//! and classic uml_switch clients (our guest kernel, `linux.uml`) on the
//! same control socket, inside private network namespaces. Root only.

mod common;
mod net_vde_support;

use common::kernel::KGuest;
use common::net::{ping_body, Netns};
use net_vde_support::{guest_user, init, run_ours, Bg, Sw};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use umlkit::switch::proto::UnixAddr;
use umlkit::switch::vde::{encode_request, PortRequest};

/// A VDE client as vdeplug4's `vde://` plug is one: a data socket bound
/// at `DIR/.PID-NNNNN`, the request on `DIR/ctl`, the reply's address
/// connected.
struct VdeClient {
    /// Open for as long as the port lives.
    _ctl: UnixStream,
    data: UnixDatagram,
    /// The switch's data socket for this port.
    reply: PathBuf,
}

fn vde_connect(dir: &Path, n: u32, port: PortRequest) -> std::io::Result<VdeClient> {
    let mine = dir.join(format!(".{:05}-{n:05}", std::process::id()));
    let _ = std::fs::remove_file(&mine);
    let data = UnixDatagram::bind(&mine)?;
    let mut ctl = UnixStream::connect(dir.join("ctl"))?;
    let addr = UnixAddr::path(mine.as_os_str().as_encoded_bytes()).unwrap();
    ctl.write_all(&encode_request(&addr, port, "vdeplug: test"))?;
    ctl.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = [0u8; 110];
    let got = ctl.read(&mut reply);
    let _ = std::fs::remove_file(&mine);
    let n = got?;
    if n != 110 {
        return Err(std::io::Error::other(format!("reply of {n} bytes")));
    }
    let end = reply[2..].iter().position(|&b| b == 0).unwrap_or(108);
    let reply = PathBuf::from(String::from_utf8_lossy(&reply[2..2 + end]).into_owned());
    data.connect(&reply)?;
    data.set_read_timeout(Some(Duration::from_millis(500)))?;
    Ok(VdeClient {
        _ctl: ctl,
        data,
        reply,
    })
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
    let mut f = vec![tag; 60];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

fn port_file(c: &VdeClient) -> String {
    c.reply.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn vde_clients_get_vde_switchs_directory_port_numbers_and_data_sockets() {
    let test = "vde_clients_get_vde_switchs_directory_port_numbers_and_data_sockets";
    if !common::have_root(test) || !common::have_peers(test, &["ip"]) {
        return;
    }
    let ns = Netns::new();
    let mut sw = Sw::start(&ns, &["-vde".into(), "@/sw".into()], Some("sw/ctl"));
    let dir = sw.path("sw");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o2700, "directory mode as vde_switch's");
    assert_eq!(mode(&dir.join("ctl")), 0o600, "ctl mode as vde_switch's");

    let a = vde_connect(&dir, 0, PortRequest::Any).unwrap();
    let b = vde_connect(&dir, 1, PortRequest::Any).unwrap();
    let c = vde_connect(&dir, 2, PortRequest::Port(5)).unwrap();
    assert!(port_file(&a).starts_with("001."), "{:?}", a.reply);
    assert!(port_file(&b).starts_with("002."), "{:?}", b.reply);
    assert!(port_file(&c).starts_with("005."), "{:?}", c.reply);
    assert_eq!(a.reply.parent(), Some(dir.as_path()));
    assert!(
        vde_connect(&dir, 3, PortRequest::Port(5)).is_err(),
        "a busy port must be refused"
    );

    // Frames flow: a broadcast reaches both others, the reply comes back
    // to a alone once its address is learned.
    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    a.data.send(&frame([0xff; 6], A, 7)).unwrap();
    let mut buf = [0u8; 2048];
    for (who, cl) in [("b", &b), ("c", &c)] {
        let n = cl
            .data
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!((n, buf[14]), (60, 7), "{who}");
    }
    b.data.send(&frame(A, B, 8)).unwrap();
    assert_eq!(
        a.data.recv(&mut buf).map(|n| (n, buf[14])).unwrap(),
        (60, 8)
    );
    assert!(c.data.recv(&mut buf).is_err(), "a unicast leaked to c");

    // A port that goes frees its number and its socket file.
    let b_file = b.reply.clone();
    drop(b);
    assert!(sw.wait_log("Disconnect", Duration::from_secs(5)));
    assert!(!b_file.exists(), "port 2's data socket was left behind");
    let d = vde_connect(&dir, 4, PortRequest::Any).unwrap();
    assert!(port_file(&d).starts_with("002."), "{:?}", d.reply);
    assert!(sw.stdout().contains("VDE port 1: vdeplug: test"));

    drop((a, c, d));
    sw.stop();
    assert!(!dir.exists(), "the directory was not removed at exit");
    assert!(
        sw.stderr().contains("1 bad control requests"),
        "{}",
        sw.stderr()
    );
}

#[test]
fn frames_from_many_ports_to_one_all_arrive_in_order_and_a_leaving_port_is_forgotten() {
    let test = "frames_from_many_ports_to_one_all_arrive_in_order_and_a_leaving_port_is_forgotten";
    if !common::have_root(test) || !common::have_peers(test, &["ip"]) {
        return;
    }
    let ns = Netns::new();
    let mut sw = Sw::start(&ns, &["-vde".into(), "@/sw".into()], Some("sw/ctl"));
    let dir = sw.path("sw");
    let mac = |i: u8| [2, 0, 0, 0, 1, i];
    // Port 0 receives, 1-4 send to it, 5 watches for leaks.
    let clients: Vec<VdeClient> = (0..6u8)
        .map(|i| vde_connect(&dir, u32::from(i), PortRequest::Any).unwrap())
        .collect();
    for c in &clients {
        c.data
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
    let mut buf = [0u8; 2048];
    // Every port announces itself, so that all are learned.
    for (i, c) in clients.iter().enumerate() {
        c.data.send(&frame([0xff; 6], mac(i as u8), 0xb0)).unwrap();
        for (j, other) in clients.iter().enumerate() {
            if j != i {
                let n = other.data.recv(&mut buf).unwrap();
                assert_eq!((n, &buf[6..12]), (60, &mac(i as u8)[..]), "port {j}");
            }
        }
    }

    // 40 frames from each of 1-4 to 0, interleaved: the switch gathers
    // what several sockets brought in one wake-up and sends it on
    // together; each sender's frames must still come out complete and in
    // their order.
    const EACH: u8 = 40;
    for seq in 0..EACH {
        for s in 1..5u8 {
            let mut f = frame(mac(0), mac(s), s);
            f[15] = seq;
            clients[usize::from(s)].data.send(&f).unwrap();
        }
    }
    let mut next = [0u8; 5];
    for _ in 0..4 * u32::from(EACH) {
        let n = clients[0]
            .data
            .recv(&mut buf)
            .expect("a frame went missing");
        let s = buf[11];
        assert_eq!(n, 60);
        assert!((1..5).contains(&s) && buf[14] == s, "a stranger's frame");
        assert_eq!(
            buf[15],
            next[usize::from(s)],
            "port {s}'s frames out of order"
        );
        next[usize::from(s)] += 1;
    }
    assert_eq!(next[1..], [EACH; 4]);
    clients[5].data.set_nonblocking(true).unwrap();
    assert!(
        clients[5].data.recv(&mut buf).is_err(),
        "a unicast to port 0 leaked to port 5"
    );

    // Port 1 sends and leaves at once: whether its last frames are
    // forwarded or not, its address must be forgotten with it, so a frame
    // for it is flooded again (port 5 sees it).
    let mut clients = clients.into_iter();
    let p0 = clients.next().unwrap();
    let p1 = clients.next().unwrap();
    for seq in 0..8 {
        let mut f = frame(mac(0), mac(1), 1);
        f[15] = seq;
        p1.data.send(&f).unwrap();
    }
    drop(p1);
    assert!(sw.wait_log("Disconnect", Duration::from_secs(10)));
    p0.data.send(&frame(mac(1), mac(0), 0xcc)).unwrap();
    let watcher = clients.nth(3).unwrap();
    watcher.data.set_nonblocking(false).unwrap();
    loop {
        let n = watcher
            .data
            .recv(&mut buf)
            .expect("a frame for a port that left was not flooded");
        if buf[14] == 0xcc {
            assert_eq!((n, &buf[..6]), (60, &mac(1)[..]));
            break;
        }
    }
    sw.stop();
}

/// `vde_plug vde://DIR tap://TAP` on `uml_switch -vde DIR` in `ns`, the TAP
/// up with `addr`; waits until the plug has its port.
fn vde_plug_tap(ns: &Netns, sw: &Sw, dir: &Path, tap: &str, addr: &str) -> Bg {
    let plug = ns
        .command("vde_plug")
        .arg(format!("vde://{}", dir.display()))
        .arg(format!("tap://{tap}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vde_plug");
    let plug = Bg(plug);
    assert!(
        sw.wait_log("VDE port 1: vdeplug", Duration::from_secs(10)),
        "vde_plug never connected:\n{}{}",
        sw.stdout(),
        sw.stderr()
    );
    let start = std::time::Instant::now();
    while ns.link(tap).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "no {tap}");
        std::thread::sleep(Duration::from_millis(20));
    }
    ns.run_ok("ip", &["addr", "add", addr, "dev", tap]);
    ns.run_ok("ip", &["link", "set", tap, "up"]);
    plug
}

#[test]
fn our_guest_on_a_vde_directory_pings_a_vde_plug_tap() {
    let test = "our_guest_on_a_vde_directory_pings_a_vde_plug_tap";
    if !common::have_peers(test, &["ip", "vde_plug"]) {
        return;
    }
    let Some(user) = guest_user(test) else {
        return;
    };
    let ns = Netns::new();
    let sw = Sw::start(
        &ns,
        &["-vde".into(), "@/sw".into(), "-mode".into(), "666".into()],
        Some("sw/ctl"),
    );
    let dir = sw.path("sw");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        0o2777
    );
    let _plug = vde_plug_tap(&ns, &sw, &dir, "vdetap0", "10.7.0.254/24");
    let g = KGuest::new(user, &init(&ping_body("10.7.0.1", "10.7.0.254", 15, 0)));
    let out = run_ours(
        &ns,
        &g,
        &format!(
            "eth0=daemon,fe:fd:0a:07:00:01,unix,{}",
            dir.join("ctl").display()
        ),
    );
    assert!(
        out.contains("PING-OK 10.7.0.254"),
        "{out}\nswitch:\n{}{}",
        sw.stdout(),
        sw.stderr()
    );
    // The guest was a classic client: port 2, an abstract data socket.
    assert!(sw.stdout().contains("VDE port 2: "), "{}", sw.stdout());
}

#[test]
fn a_real_uml_guest_on_a_vde_directory_pings_a_vde_plug_tap() {
    let test = "a_real_uml_guest_on_a_vde_directory_pings_a_vde_plug_tap";
    if !common::have_root(test)
        || !common::have_peers(test, &["ip", "vde_plug", "linux.uml", "mke2fs", "busybox"])
    {
        return;
    }
    let ns = Netns::new();
    let sw = Sw::start(&ns, &["-vde".into(), "@/sw".into()], Some("sw/ctl"));
    let dir = sw.path("sw");
    let _plug = vde_plug_tap(&ns, &sw, &dir, "vdetap1", "10.7.1.254/24");
    let g = common::uml::Guest::new(
        &common::uml::init_script(&ping_body("10.7.1.1", "10.7.1.254", 15, 0)),
        16,
    );
    let eth = format!(
        "eth0=daemon,fe:fd:0a:07:01:01,unix,{}",
        dir.join("ctl").display()
    );
    let b = common::net::boot_in(
        &ns,
        &g,
        "a.cow,root_fs",
        &[eth.as_str()],
        &common::net::NetBoot::default(),
        Duration::from_secs(120),
    );
    assert!(
        b.output.contains("PING-OK 10.7.1.254"),
        "{}\nswitch:\n{}{}",
        b.output,
        sw.stdout(),
        sw.stderr()
    );
}
