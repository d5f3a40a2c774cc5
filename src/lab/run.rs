//! The I/O shell: starting switches and guests (detached, in their own
//! process groups, so they outlive `uml_lab`), waiting for their startup
//! scripts, running commands through the guest agent, stopping and
//! cleaning. Every process is recorded in `lab.json` as soon as it runs.

use super::copy::{self, Content, Generated};
use super::guest::{self, Reply};
use super::model::{Lab, Machine};
use super::plan::{machine_plan, one_word, HostDirs, MachinePlan, Order};
use super::state::{Layout, Lock, MachineState, Proc, State, SwitchState};
use super::{Error, Result, Warning};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs a lab runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `linux`.
    pub kernel: PathBuf,
    /// `uml_switch`.
    pub switch: PathBuf,
    /// `uml_lab` itself, run as `uml_lab capture-relay SOCKET` beside each
    /// switch so its domain can be captured (none: no captures).
    pub relay: Option<PathBuf>,
}

/// How to start.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The default root image (`--image`, `UML_LAB_IMAGE`), absolute.
    pub image: Option<PathBuf>,
    /// The machines to start (all when empty).
    pub machines: Vec<String>,
    /// Wait for the startup scripts of every machine.
    pub wait: bool,
    /// How long one machine may take to run its startup scripts.
    pub timeout: Duration,
    /// The host directories the machines see (`/hostlab`, `/hosthome`).
    pub host_dirs: HostDirs,
    /// Start only the machines placed on this host (`[host]=NAME`).
    pub host: Option<String>,
}

/// What a start reports as it goes.
#[derive(Debug, Clone)]
pub enum Event {
    /// A notice (a Docker image name replaced, an unknown key).
    Notice(String),
    /// The number of machines to boot.
    Total(usize),
    /// A machine's disk is ready and it boots.
    Booting(String),
    /// A machine finished its startup scripts.
    Ready(String),
}

/// True for what looks like a Docker image name rather than a file
/// (`kathara/base`, `debian:12`).
fn docker_name(s: &str) -> bool {
    !s.starts_with(['/', '.', '~'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
}

/// The root image of every machine in `ms`, checked to exist; notices for
/// Docker image names that fall back to the default.
pub fn images(
    lab: &Lab,
    ms: &[&Machine],
    default: Option<&Path>,
) -> Result<(BTreeMap<String, PathBuf>, Vec<Warning>)> {
    let conf = lab.dir.join("lab.conf");
    let mut notes = Vec::new();
    let lab_default = match (default, &lab.image) {
        (Some(p), _) => Some((p.to_path_buf(), None)),
        (None, Some((img, line))) => Some((lab.dir.join(img), Some(*line))),
        (None, None) => None,
    };
    if let Some((p, line)) = &lab_default {
        if !p.is_file() {
            return Err(match line {
                Some(l) => Error::syntax(
                    &conf,
                    *l,
                    format!("LAB_IMAGE: {}: no such image file", p.display()),
                ),
                None => Error::Invalid(format!("{}: no such image file", p.display())),
            });
        }
    }
    let mut out = BTreeMap::new();
    for m in ms {
        let own = match &m.image {
            Some((img, line)) => {
                let p = lab.dir.join(img);
                if p.is_file() {
                    Some(p)
                } else if docker_name(img) && lab_default.is_some() {
                    notes.push(Warning(format!(
                        "{}:{line}: {}[image]={img} is a container image; using the lab's default image",
                        conf.display(),
                        m.name
                    )));
                    None
                } else {
                    return Err(Error::syntax(
                        &conf,
                        *line,
                        format!("{}[image]: {}: no such image file", m.name, p.display()),
                    ));
                }
            }
            None => None,
        };
        let img = match (own, &lab_default) {
            (Some(p), _) => p,
            (None, Some((p, _))) => p.clone(),
            (None, None) => {
                return Err(Error::Invalid(format!(
                "{}: no root image: give --image IMAGE, UML_LAB_IMAGE=IMAGE or LAB_IMAGE= in {} (make one with `uml_lab image build IMAGE`)",
                m.name,
                conf.display()
            )))
            }
        };
        let abs = std::path::absolute(&img).map_err(|e| Error::io(&img, "cannot resolve", e))?;
        out.insert(m.name.clone(), abs);
    }
    Ok((out, notes))
}

fn mkdirs(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(path, "cannot create", e))
}

fn fifo(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => return Ok(()),
        Ok(_) => std::fs::remove_file(path).map_err(|e| Error::io(path, "cannot remove", e))?,
        Err(_) => {}
    }
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::io(path, "cannot make FIFO", e.into()))
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "cannot read", e)),
    }
}

/// The `/uml_lab/` files of machine `m`.
fn generated(lab: &Lab, m: &Machine, taps: &[(u32, String)]) -> Result<Vec<Generated>> {
    let mut g: Vec<Generated> = vec![
        ("init".into(), guest::INIT.as_bytes().to_vec(), 0o755),
        (
            "shutdown".into(),
            guest::SHUTDOWN.as_bytes().to_vec(),
            0o755,
        ),
    ];
    for (host, guest_name) in [
        ("shared.startup".to_string(), "shared.startup"),
        (format!("{}.startup", m.name), "machine.startup"),
        ("shared.shutdown".to_string(), "shared.shutdown"),
        (format!("{}.shutdown", m.name), "machine.shutdown"),
    ] {
        if let Some(b) = read_opt(&lab.dir.join(host))? {
            g.push((guest_name.to_string(), b, 0o755));
        }
    }
    if !taps.is_empty() {
        g.push(("net".into(), guest::net_fragment(taps).into_bytes(), 0o644));
    }
    Ok(g)
}

/// Prepares the disk and files of `m` and returns its plan.
fn prepare(
    lab: &Lab,
    layout: &Layout,
    index: usize,
    m: &Machine,
    image: &Path,
    host: &HostDirs,
) -> Result<MachinePlan> {
    let dir = layout.machine_dir(&m.name);
    mkdirs(&dir)?;
    fifo(&layout.console_in(&m.name))?;
    fifo(&layout.exec_in(&m.name))?;
    for f in [layout.exec_out(&m.name), layout.console_log(&m.name)] {
        std::fs::write(&f, b"").map_err(|e| Error::io(&f, "cannot create", e))?;
    }
    // The TAP addresses do not depend on the init; plan once to learn them.
    let draft = machine_plan(layout, index, m, image, "", host);
    let shared = lab.dir.join("shared");
    let own = lab.dir.join(&m.name);
    let mut trees: Vec<&Path> = Vec::new();
    if shared.is_dir() {
        trees.push(&shared);
    }
    if m.has_dir {
        trees.push(&own);
    }
    let content = Content {
        trees,
        generated: generated(lab, m, &draft.taps)?,
    };
    let init = copy::prepare(&draft.cow, image, &content)
        .map_err(|e| Error::machine(&m.name, format!("preparing its disk: {e}")))?;
    Ok(machine_plan(layout, index, m, image, &init, host))
}

/// True when `ip` is one of this host's addresses (a socket binds to it).
fn is_local(ip: std::net::IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// Starts domain `domain`'s switch (with its VXLAN peers) and, with
/// `tools.relay`, its capture relay reading the switch's pcap stream.
fn spawn_switch(
    tools: &Tools,
    layout: &Layout,
    domain: &str,
    dom: Option<&super::model::Domain>,
    report: &mut dyn FnMut(Event),
) -> Result<SwitchState> {
    let sock = layout.switch_socket(domain);
    let _ = std::fs::remove_file(&sock);
    let log_path = layout.switch_log(domain);
    let log =
        std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, "cannot create", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::io(&log_path, "cannot dup", e))?;
    let hub = dom.is_some_and(|d| d.hub);
    let mut cmd = Command::new(&tools.switch);
    cmd.arg("-unix").arg(&sock);
    if hub {
        cmd.arg("-hub");
    }
    if let Some(vx) = dom.and_then(|d| d.vxlan.as_ref()) {
        match vx.switch_args(&is_local) {
            Some(args) => {
                cmd.args(args);
            }
            None => report(Event::Notice(format!(
                "collision domain {domain}: every VXLAN peer is this host; the domain stays local"
            ))),
        }
    }
    let mut relay_cmd = None;
    if let Some(prog) = &tools.relay {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io(&layout.dir, "cannot make a pipe", e.into()))?;
        cmd.args(["-pcap", "-"]).stdout(w);
        let cap = layout.capture_socket(domain);
        let mut rc = Command::new(prog);
        rc.arg("capture-relay").arg(&cap).stdin(r);
        relay_cmd = Some(rc);
    } else {
        cmd.stdout(log);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stderr(log2)
        .current_dir(&layout.dir)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(&tools.switch, "cannot run", e))?;
    // The parent's copy of the pipe's write end goes with `cmd`.
    drop(cmd);
    let pid = pid_of(&child);
    let proc = Proc::of(pid)
        .ok_or_else(|| Error::Invalid(format!("switch for {domain} exited at once")))?;
    let relay = match relay_cmd {
        Some(mut rc) => {
            let relay_log = layout.switch_dir().join(format!("{domain}.relay.log"));
            let rl = std::fs::File::create(&relay_log)
                .map_err(|e| Error::io(&relay_log, "cannot create", e))?;
            let c = rc
                .stdout(Stdio::null())
                .stderr(rl)
                .current_dir(&layout.dir)
                .process_group(0)
                .spawn()
                .map_err(|e| Error::io(rc.get_program().as_ref(), "cannot run", e))?;
            Proc::of(pid_of(&c))
        }
        None => None,
    };
    Ok(SwitchState { proc, hub, relay })
}

fn pid_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap_or(i32::MAX)
}

fn wait_sockets(layout: &Layout, domains: &[String], limit: Duration) -> Result<()> {
    let start = Instant::now();
    for d in domains {
        let sock = layout.switch_socket(d);
        while !sock.exists() {
            if start.elapsed() > limit {
                let log = std::fs::read_to_string(layout.switch_log(d)).unwrap_or_default();
                return Err(Error::Invalid(format!(
                    "collision domain {d}: uml_switch did not come up: {}",
                    log.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

/// The shell line that runs the kernel with the lab's channels: console
/// input from `con.in`, output to `console.log`, the agent's line on
/// descriptors 3 and 4 (FIFOs opened read-write never see end-of-file).
const LAUNCH: &str = r#"exec "$0" "$@" 3<>exec.in 4>>exec.out 0<>con.in >>console.log 2>&1"#;

fn spawn_machine(tools: &Tools, layout: &Layout, plan: &MachinePlan) -> Result<(Child, Proc)> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(LAUNCH)
        .arg(&tools.kernel)
        .args(&plan.args)
        .current_dir(layout.machine_dir(&plan.name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(&tools.kernel, "cannot run", e))?;
    let proc =
        Proc::of(pid_of(&child)).ok_or_else(|| Error::machine(&plan.name, "exited at once"))?;
    Ok((child, proc))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

/// Starts the lab (or the machines `opts.machines`): switches first, then
/// the machines in dependency order, each booting as soon as those it
/// depends on have run their startup scripts. Returns the machines
/// started. Everything is checked before anything starts.
pub fn start(
    lab: &Lab,
    layout: &Layout,
    tools: &Tools,
    opts: &StartOptions,
    report: &mut dyn FnMut(Event),
) -> Result<Vec<String>> {
    let mut selected = lab.select(&opts.machines)?;
    if let Some(h) = &opts.host {
        let here = lab.on_host(h)?;
        if let Some(m) = selected
            .iter()
            .find(|m| !opts.machines.is_empty() && !here.contains(&m.name))
        {
            return Err(Error::machine(
                &m.name,
                format!(
                    "not placed on host {h} ([host]={})",
                    m.host.as_deref().unwrap_or("none")
                ),
            ));
        }
        selected.retain(|m| here.contains(&m.name));
    }
    let (images, notes) = images(lab, &selected, opts.image.as_deref())?;
    for n in notes.into_iter().chain(lab.warnings.iter().cloned()) {
        report(Event::Notice(n.0));
    }
    for t in [&tools.kernel, &tools.switch] {
        if !t.is_file() {
            return Err(Error::Invalid(format!("{}: no such program", t.display())));
        }
    }
    layout.check_lengths()?;
    mkdirs(&layout.dir)?;
    let _lock = Lock::take(layout)?;
    let mut state = State::load(layout)?;
    state.lab = lab.dir.clone();
    if let Some(m) = selected
        .iter()
        .find(|m| state.machines.get(&m.name).is_some_and(|s| s.proc.alive()))
    {
        return Err(Error::machine(
            &m.name,
            "already running (uml_lab stop it first)",
        ));
    }
    for m in &selected {
        state.machines.remove(&m.name);
    }
    mkdirs(&layout.uml_dir())?;
    mkdirs(&layout.switch_dir())?;
    // Switches for every domain the selection uses.
    let mut domains: Vec<String> = Vec::new();
    for m in &selected {
        for a in m.ifaces.values() {
            if let super::conf::Attach::Domain { name, .. } = a {
                if !domains.contains(name) {
                    domains.push(name.clone());
                }
            }
        }
    }
    for d in &domains {
        let running = state.switches.get(d).is_some_and(|s| s.proc.alive());
        if !running {
            let sw = spawn_switch(tools, layout, d, lab.domains.get(d), report)?;
            state.switches.insert(d.clone(), sw);
        }
    }
    state.save(layout)?;
    wait_sockets(layout, &domains, Duration::from_secs(10))?;
    // Disks, in parallel.
    let index: BTreeMap<&str, usize> = lab
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut host = opts.host_dirs.clone();
    if host.lab.is_none() {
        host.lab = Some(lab.dir.clone());
    }
    if host.lab.as_ref().is_some_and(|d| !one_word(d)) {
        report(Event::Notice(format!(
            "{}: a path with white space; /hostlab is not mounted",
            lab.dir.display()
        )));
    }
    let plans = prepare_all(lab, layout, &selected, &images, &index, &host)?;
    report(Event::Total(selected.len()));
    boot(
        lab, layout, tools, opts, &selected, plans, &mut state, report,
    )
}

fn prepare_all(
    lab: &Lab,
    layout: &Layout,
    selected: &[&Machine],
    images: &BTreeMap<String, PathBuf>,
    index: &BTreeMap<&str, usize>,
    host: &HostDirs,
) -> Result<BTreeMap<String, MachinePlan>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(m) = selected.get(i) else { return };
                let img = &images[&m.name];
                let r = prepare(lab, layout, index[m.name.as_str()], m, img, host);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((m.name.clone(), r));
            });
        }
    });
    let mut plans = BTreeMap::new();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(n, _)| index[n.as_str()]);
    for (name, r) in results {
        plans.insert(name, r?);
    }
    Ok(plans)
}

#[allow(clippy::too_many_arguments)]
fn boot(
    lab: &Lab,
    layout: &Layout,
    tools: &Tools,
    opts: &StartOptions,
    selected: &[&Machine],
    plans: BTreeMap<String, MachinePlan>,
    state: &mut State,
    report: &mut dyn FnMut(Event),
) -> Result<Vec<String>> {
    let order = Order::new(lab, selected);
    let mut started = BTreeSet::new();
    let mut done = BTreeSet::new();
    let mut booting: BTreeMap<String, (Child, Instant)> = BTreeMap::new();
    let total = selected.len();
    while done.len() < total {
        let ready = order.ready(&started, &done);
        for name in &ready {
            let plan = &plans[name];
            let (child, proc) = spawn_machine(tools, layout, plan)?;
            let ifaces = lab
                .machine(name)
                .map(|m| {
                    m.ifaces
                        .iter()
                        .map(|(n, a)| {
                            let to = match a {
                                super::conf::Attach::Domain { name, .. } => name.clone(),
                                super::conf::Attach::Tap { host_ip, .. } => {
                                    format!("tap:{host_ip}")
                                }
                            };
                            (format!("eth{n}"), to)
                        })
                        .collect()
                })
                .unwrap_or_default();
            state
                .machines
                .insert(name.clone(), MachineState { proc, ifaces });
            started.insert(name.clone());
            booting.insert(name.clone(), (child, Instant::now()));
            report(Event::Booting(name.clone()));
        }
        if !ready.is_empty() {
            state.save(layout)?;
        }
        if !opts.wait && started.len() == total {
            break;
        }
        let mut finished = Vec::new();
        for (name, (child, since)) in booting.iter_mut() {
            let out = std::fs::read(layout.exec_out(name)).unwrap_or_default();
            if guest::is_ready(&out) {
                finished.push(name.clone());
                continue;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::machine(
                    name,
                    format!(
                        "ended while booting ({status}): {}",
                        tail(&layout.console_log(name), 3)
                    ),
                ));
            }
            if since.elapsed() > opts.timeout {
                return Err(Error::machine(
                    name,
                    format!(
                        "startup not finished after {} s (console: {})",
                        opts.timeout.as_secs(),
                        layout.console_log(name).display()
                    ),
                ));
            }
        }
        for name in finished {
            booting.remove(&name);
            report(Event::Ready(name.clone()));
            done.insert(name);
        }
        if done.len() < total {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(selected.iter().map(|m| m.name.clone()).collect())
}

/// Runs `cmd` (a shell command line) in running machine `machine` and
/// returns its output and status; `limit` bounds the wait.
pub fn exec(layout: &Layout, machine: &str, cmd: &[u8], limit: Option<Duration>) -> Result<Reply> {
    let state = State::load(layout)?;
    let proc = running(&state, machine)?;
    let id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let line = guest::request(&id, cmd).map_err(|e| Error::machine(machine, e.to_string()))?;
    let out_path = layout.exec_out(machine);
    let mut out =
        std::fs::File::open(&out_path).map_err(|e| Error::io(&out_path, "cannot open", e))?;
    let mut pos = out
        .seek(SeekFrom::End(0))
        .map_err(|e| Error::io(&out_path, "cannot seek", e))?;
    let in_path = layout.exec_in(machine);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&in_path)
        .map_err(|e| Error::io(&in_path, "cannot open", e))?;
    fifo.write_all(line.as_bytes())
        .map_err(|e| Error::io(&in_path, "cannot write", e))?;
    drop(fifo);
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        out.seek(SeekFrom::Start(pos))
            .map_err(|e| Error::io(&out_path, "cannot seek", e))?;
        loop {
            let n = out
                .read(&mut chunk)
                .map_err(|e| Error::io(&out_path, "cannot read", e))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            pos += u64::try_from(n).unwrap_or(0);
        }
        if let Some(r) = guest::parse_reply(&buf, &id) {
            return Ok(r);
        }
        if !proc.alive() {
            return Err(Error::machine(
                machine,
                "stopped before the command finished",
            ));
        }
        if limit.is_some_and(|l| start.elapsed() > l) {
            return Err(Error::machine(
                machine,
                format!(
                    "no answer in {} s (is the machine booted? its agent runs once the startup scripts are done)",
                    limit.map_or(0, |l| l.as_secs())
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn running(state: &State, machine: &str) -> Result<Proc> {
    state
        .machines
        .get(machine)
        .map(|m| m.proc)
        .filter(Proc::alive)
        .ok_or_else(|| Error::machine(machine, "not running"))
}

/// How to stop.
#[derive(Debug, Clone)]
pub struct StopOptions {
    /// The machines (all running ones when empty).
    pub machines: Vec<String>,
    /// Kill at once: no shutdown scripts, no halt.
    pub force: bool,
    /// How long the shutdown scripts and the halt may take each.
    pub timeout: Duration,
}

fn wait_gone(p: Proc, limit: Duration) -> bool {
    let start = Instant::now();
    while p.alive() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn kill_proc(p: Proc) {
    if p.alive() {
        let pid = Pid::from_raw(p.pid);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// Stops one machine: shutdown scripts, halt, then a kill if it lingers.
/// Returns how it ended (`halted` or `killed`).
fn stop_machine(layout: &Layout, name: &str, p: Proc, opts: &StopOptions) -> &'static str {
    let mut how = "killed";
    if p.alive() && !opts.force {
        let _ = exec(layout, name, b"sh /uml_lab/shutdown", Some(opts.timeout));
        if let Ok(c) = crate::mconsole::client::Client::new(Some(Duration::from_secs(5))) {
            let _ = c.command(&layout.mconsole(name), b"halt");
        }
        if wait_gone(p, opts.timeout) {
            how = "halted";
        }
    }
    kill_proc(p);
    wait_gone(p, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(layout.uml_dir().join(name));
    how
}

/// Stops machines (and, once no machine uses them, their switches).
/// Returns `(machine, how)` for each machine stopped.
pub fn stop(
    lab: Option<&Lab>,
    layout: &Layout,
    opts: &StopOptions,
) -> Result<Vec<(String, String)>> {
    if !layout.dir.is_dir() {
        return Ok(Vec::new());
    }
    if let Some(lab) = lab {
        lab.select(&opts.machines)?;
    }
    let _lock = Lock::take(layout)?;
    let mut state = State::load(layout)?;
    let names: Vec<String> = state
        .machines
        .keys()
        .filter(|n| opts.machines.is_empty() || opts.machines.contains(n))
        .cloned()
        .collect();
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for n in &names {
            let p = state.machines[n].proc;
            let results = &results;
            s.spawn(move || {
                let how = stop_machine(layout, n, p, opts);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((n.clone(), how.to_string()));
            });
        }
    });
    for n in &names {
        state.machines.remove(n);
    }
    let in_use: BTreeSet<String> = state
        .machines
        .values()
        .flat_map(|m| m.ifaces.values().cloned())
        .collect();
    let idle: Vec<String> = state
        .switches
        .keys()
        .filter(|d| !in_use.contains(*d))
        .cloned()
        .collect();
    for d in idle {
        if let Some(sw) = state.switches.remove(&d) {
            for p in std::iter::once(sw.proc).chain(sw.relay) {
                if p.alive() {
                    let _ = kill(Pid::from_raw(p.pid), Signal::SIGTERM);
                    if !wait_gone(p, Duration::from_secs(3)) {
                        kill_proc(p);
                    }
                }
            }
        }
        let _ = std::fs::remove_file(layout.switch_socket(&d));
        let _ = std::fs::remove_file(layout.capture_socket(&d));
    }
    state.save(layout)?;
    let mut out = results.into_inner().unwrap_or_else(|e| e.into_inner());
    out.sort();
    Ok(out)
}

/// Stops everything and deletes the state directory (COWs, logs).
pub fn clean(
    lab: Option<&Lab>,
    layout: &Layout,
    timeout: Duration,
) -> Result<Vec<(String, String)>> {
    let stopped = stop(
        lab,
        layout,
        &StopOptions {
            machines: Vec::new(),
            force: false,
            timeout,
        },
    )?;
    match std::fs::remove_dir_all(&layout.dir) {
        Ok(()) => Ok(stopped),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(stopped),
        Err(e) => Err(Error::io(&layout.dir, "cannot remove", e)),
    }
}

/// One machine in a status report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineStatus {
    /// Its name.
    pub name: String,
    /// `running`, `stopped` or `crashed` (recorded but gone).
    pub state: String,
    /// The monitor's pid while running.
    pub pid: Option<i32>,
    /// `ethN -> domain`.
    pub interfaces: BTreeMap<String, String>,
}

/// One collision domain in a status report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DomainStatus {
    /// Its name.
    pub name: String,
    /// `running` or `stopped`.
    pub state: String,
    /// The switch's pid while running.
    pub pid: Option<i32>,
    /// A hub rather than a switch.
    pub hub: bool,
    /// The switch's control socket.
    pub socket: PathBuf,
    /// `MACHINE.ethN` attached.
    pub members: Vec<String>,
    /// The VNI, for a domain joined over VXLAN.
    pub vxlan: Option<u32>,
    /// The capture socket, while a relay serves it.
    pub capture: Option<PathBuf>,
}

/// The status of a lab.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// The lab directory.
    pub lab: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Machines, in lab order.
    pub machines: Vec<MachineStatus>,
    /// Domains, by name.
    pub domains: Vec<DomainStatus>,
}

/// The status of `lab` from its state directory.
pub fn status(lab: &Lab, layout: &Layout) -> Result<Status> {
    let state = State::load(layout)?;
    let machines = lab
        .machines
        .iter()
        .map(|m| {
            let rec = state.machines.get(&m.name);
            let (st, pid) = match rec {
                Some(r) if r.proc.alive() => ("running", Some(r.proc.pid)),
                Some(_) => ("crashed", None),
                None => ("stopped", None),
            };
            let interfaces = m
                .ifaces
                .iter()
                .map(|(n, a)| {
                    let to = match a {
                        super::conf::Attach::Domain { name, .. } => name.clone(),
                        super::conf::Attach::Tap { host_ip, .. } => format!("tap:{host_ip}"),
                    };
                    (format!("eth{n}"), to)
                })
                .collect();
            MachineStatus {
                name: m.name.clone(),
                state: st.to_string(),
                pid,
                interfaces,
            }
        })
        .collect();
    let domains = lab
        .domains
        .iter()
        .map(|(d, dom)| {
            let rec = state.switches.get(d).filter(|s| s.proc.alive());
            DomainStatus {
                name: d.clone(),
                state: if rec.is_some() { "running" } else { "stopped" }.to_string(),
                pid: rec.map(|s| s.proc.pid),
                hub: dom.hub,
                socket: layout.switch_socket(d),
                members: dom
                    .members
                    .iter()
                    .map(|(m, n)| format!("{m}.eth{n}"))
                    .collect(),
                vxlan: dom.vxlan.as_ref().map(|v| v.vni),
                capture: rec
                    .and_then(|s| s.relay)
                    .filter(Proc::alive)
                    .map(|_| layout.capture_socket(d)),
            }
        })
        .collect();
    Ok(Status {
        lab: lab.dir.clone(),
        state_dir: layout.dir.clone(),
        machines,
        domains,
    })
}

/// One machine's `test` outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Results equal the signature.
    Passed,
    /// A line differs: `(line number, expected, got)`.
    Failed(usize, String, String),
    /// No signature to compare with (results written).
    NoSignature,
    /// Signature written (`--signature`).
    Signed,
}

/// Compares results with a signature: the first differing line.
pub fn compare(signature: &str, results: &str) -> Option<(usize, String, String)> {
    let a: Vec<&str> = signature.lines().collect();
    let b: Vec<&str> = results.lines().collect();
    (0..a.len().max(b.len())).find_map(|i| {
        let (x, y) = (a.get(i), b.get(i));
        (x != y).then(|| {
            (
                i + 1,
                x.map_or("(nothing)".to_string(), |s| s.to_string()),
                y.map_or("(nothing)".to_string(), |s| s.to_string()),
            )
        })
    })
}

/// Netkit's `ltest` on a running lab: `_test/MACHINE.test` runs in each
/// machine that has one, its output goes to `_test/results/MACHINE.user`
/// and is compared with `_test/signature/MACHINE.user` (or, with `sign`,
/// written there).
pub fn test(
    lab: &Lab,
    layout: &Layout,
    sign: bool,
    limit: Duration,
) -> Result<Vec<(String, TestOutcome)>> {
    let tdir = lab.dir.join("_test");
    let results = tdir.join("results");
    let sigs = tdir.join("signature");
    let mut out = Vec::new();
    for m in &lab.machines {
        let Some(script) = read_opt(&tdir.join(format!("{}.test", m.name)))? else {
            continue;
        };
        let reply = exec(layout, &m.name, &script, Some(limit))?;
        let text = String::from_utf8_lossy(&reply.stdout).into_owned();
        let dest = if sign { &sigs } else { &results };
        mkdirs(dest)?;
        let file = dest.join(format!("{}.user", m.name));
        std::fs::write(&file, &reply.stdout).map_err(|e| Error::io(&file, "cannot write", e))?;
        let outcome = if sign {
            TestOutcome::Signed
        } else {
            match read_opt(&sigs.join(format!("{}.user", m.name)))? {
                None => TestOutcome::NoSignature,
                Some(sig) => match compare(&String::from_utf8_lossy(&sig), &text) {
                    None => TestOutcome::Passed,
                    Some((l, e, g)) => TestOutcome::Failed(l, e, g),
                },
            }
        };
        out.push((m.name.clone(), outcome));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_is_reported() {
        assert_eq!(compare("a\nb\n", "a\nb\n"), None);
        assert_eq!(
            compare("a\nb\n", "a\nc\n"),
            Some((2, "b".to_string(), "c".to_string()))
        );
        assert_eq!(
            compare("a\n", "a\nx\n"),
            Some((2, "(nothing)".to_string(), "x".to_string()))
        );
    }

    #[test]
    fn container_image_names_are_told_from_files() {
        assert!(docker_name("kathara/base"));
        assert!(docker_name("debian:12"));
        assert!(!docker_name("/img/root_fs"));
        assert!(!docker_name("./root_fs"));
    }
}
