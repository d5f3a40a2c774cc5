//! `uml_lab`'s front end: run a Netkit/Kathará lab directory as umlkit
//! guests (see `man/uml_lab.1`). The work is in [`crate::lab`].

mod console;

use crate::lab::model::Lab;
use crate::lab::plan::HostDirs;
use crate::lab::run::{self, Event, StartOptions, StopOptions, TestOutcome, Tools};
use crate::lab::state::Layout;
use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Run a Netkit/Kathará lab directory as User-Mode Linux guests.
#[derive(Debug, Parser)]
#[command(
    name = "uml_lab",
    version,
    about = "Run a Netkit/Kathara lab directory as User-Mode Linux guests on uml_switch collision domains",
    after_help = "Exit status: 0 on success, 1 on an error or when a machine's test results \
                  differ from its signature, 2 on a usage error; `exec` exits with the \
                  command's status."
)]
pub struct Args {
    /// The lab directory (default: the current directory).
    #[arg(short = 'd', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The state directory (default: DIR/.uml_lab).
    ///
    /// For example under $XDG_RUNTIME_DIR. Its path must leave room for
    /// the sockets in it (about 60 bytes at most).
    #[arg(long = "state", global = true, value_name = "STATE")]
    pub state: Option<PathBuf>,
    /// The name of this host in a lab split over hosts (machine[host]=NAME).
    ///
    /// `start` boots only the machines placed on NAME, and the default
    /// state directory is DIR/.uml_lab-NAME, so hosts sharing the lab
    /// directory keep apart.
    #[arg(long = "host", global = true, value_name = "NAME")]
    pub host: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Boot the lab (or MACHINEs) in dependency order (Netkit's lstart).
    Start {
        /// Root image for machines without their own [image].
        ///
        /// Else UML_LAB_IMAGE in the environment, else LAB_IMAGE= in
        /// lab.conf. A missing image is an error.
        #[arg(long = "image", value_name = "IMAGE")]
        image: Option<PathBuf>,
        /// The guest kernel (default: `linux` beside uml_lab, else on PATH).
        ///
        /// uml_switch is found the same way.
        #[arg(long = "kernel", value_name = "PATH")]
        kernel: Option<PathBuf>,
        /// Return once every machine is booting, without waiting for
        /// its startup scripts.
        #[arg(long = "no-wait")]
        no_wait: bool,
        /// Seconds one machine may take to finish its startup scripts.
        #[arg(long = "timeout", value_name = "SECS", default_value_t = 120)]
        timeout: u64,
        /// No progress bar.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Mount the lab directory read-only at /hostlab in each machine.
        #[arg(long = "hostlab-ro")]
        hostlab_ro: bool,
        /// Do not mount the user's home ($HOME) at /hosthome.
        #[arg(long = "no-hosthome")]
        no_hosthome: bool,
        /// Start the switches without their capture relays.
        ///
        /// Each frame then costs the switch no write into the relay's pipe
        /// (about half the CPU time per frame on small frames), and
        /// `capture` refuses these domains until they are restarted.
        #[arg(long = "no-capture")]
        no_capture: bool,
        /// Machines to start (default: all).
        machines: Vec<String>,
    },
    /// Run shutdown scripts and halt the lab or MACHINEs (Netkit's lhalt).
    Stop {
        /// Kill at once: no shutdown scripts, no halt.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Seconds the shutdown scripts and the halt may take.
        #[arg(long = "timeout", value_name = "SECS", default_value_t = 20)]
        timeout: u64,
        /// Machines to stop (default: all).
        machines: Vec<String>,
    },
    /// Stop the lab and delete its state: disks, logs (Netkit's lclean).
    Clean,
    /// Machines, state, pids, interfaces and domains (Netkit's linfo).
    Status {
        /// Print JSON.
        ///
        /// Keys: lab, state_dir, machines (name, state, pid, interfaces)
        /// and domains (name, state, pid, hub, socket, members, vxlan: the
        /// VNI or null, capture: the capture socket while its relay runs).
        #[arg(long = "json")]
        json: bool,
    },
    /// Run a command in a running machine; its output and status.
    Exec {
        /// Seconds to wait for the command (default: no limit).
        #[arg(long = "timeout", value_name = "SECS")]
        timeout: Option<u64>,
        /// The machine.
        machine: String,
        /// The command (words joined with spaces and run by the guest's sh -c).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Run _test/MACHINE.test in each machine and compare with
    /// _test/signature/ (Netkit's ltest).
    Test {
        /// Write the results as the new signatures instead.
        ///
        /// They go to _test/signature/, one file per machine.
        #[arg(long = "signature")]
        signature: bool,
        /// Seconds one machine's test may take.
        #[arg(long = "timeout", value_name = "SECS", default_value_t = 120)]
        timeout: u64,
    },
    /// The topology as Graphviz dot (or SVG with --svg, through dot).
    Graph {
        /// Write an SVG picture to FILE (needs Graphviz's dot).
        #[arg(long = "svg", value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Attach to a machine's console in this terminal (Ctrl-] detaches).
    Console {
        /// The machine.
        machine: String,
    },
    /// Capture a running collision domain's frames as pcap (to stdout or FILE).
    Capture {
        /// Write the capture to FILE instead of standard output.
        ///
        /// Each frame is written whole as it passes, so the file can be
        /// read while it grows and is complete when the capture is stopped.
        #[arg(short = 'w', value_name = "FILE")]
        file: Option<PathBuf>,
        /// Stop after COUNT frames (default: when interrupted or when the
        /// domain stops).
        #[arg(short = 'c', value_name = "COUNT")]
        count: Option<u64>,
        /// The collision domain.
        domain: String,
    },
    /// The relay beside each switch that serves its captures (internal).
    #[command(hide = true)]
    CaptureRelay {
        /// The capture socket to serve.
        socket: PathBuf,
    },
    /// Build a Debian root image for labs (`image build OUT`; needs root).
    Image {
        /// What to do with images: `build`.
        #[arg(value_enum, value_name = "ACTION")]
        action: ImageAction,
        /// More packages to install, comma- or space-separated (repeatable).
        ///
        /// On top of sysvinit, a console login and the network tools
        /// (iproute2 net-tools iputils-ping procps tcpdump and others; see
        /// DESCRIPTION).
        #[arg(long = "packages", value_name = "LIST")]
        packages: Vec<String>,
        /// The Debian suite debootstrap installs.
        #[arg(long = "suite", value_name = "SUITE", default_value = crate::lab::image::SUITE)]
        suite: String,
        /// The archive debootstrap fetches from.
        #[arg(long = "mirror", value_name = "URL", default_value = crate::lab::image::MIRROR)]
        mirror: String,
        /// The image's size in MiB (a sparse file).
        #[arg(long = "size", value_name = "MIB", default_value_t = crate::lab::image::SIZE_MIB)]
        size: u64,
        /// Print the recipe (every step and file written) and exit.
        #[arg(long = "print-recipe")]
        print_recipe: bool,
        /// No progress display.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// The image file to write.
        #[arg(value_name = "OUT", required_unless_present = "print_recipe")]
        out: Option<PathBuf>,
    },
}

/// What `uml_lab image` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageAction {
    /// Build a Debian root image with debootstrap.
    Build,
}

/// `uml_lab`'s main.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return crate::cli::usage_error(e, 2),
    };
    match run_cmd(args) {
        Ok(code) => code,
        Err(e) => crate::cli::report("uml_lab", &e, 1),
    }
}

fn dirs(args: &Args) -> anyhow::Result<(PathBuf, Layout)> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let dir = std::path::absolute(&dir).with_context(|| format!("{}", dir.display()))?;
    if let Some(h) = &args.host {
        if !crate::lab::valid_name(h) {
            bail!("--host {h}: a host name is 1 to 32 letters, digits, '_' or '-'");
        }
    }
    let state = match (&args.state, &args.host) {
        (Some(s), _) => std::path::absolute(s).with_context(|| format!("{}", s.display()))?,
        (None, Some(h)) => dir.join(format!(".uml_lab-{h}")),
        (None, None) => dir.join(".uml_lab"),
    };
    Ok((dir, Layout::new(&state)))
}

fn load(dir: &Path) -> anyhow::Result<Lab> {
    Ok(Lab::load(dir)?)
}

/// `linux`/`uml_switch`: beside this program, else on PATH.
fn tool(name: &str) -> PathBuf {
    if let Some(p) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
    {
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn run_cmd(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, layout) = dirs(&args)?;
    match args.command {
        Cmd::Start {
            image,
            kernel,
            no_wait,
            timeout,
            quiet,
            hostlab_ro,
            no_hosthome,
            no_capture,
            machines,
        } => {
            let lab = load(&dir)?;
            let host_dirs = HostDirs {
                lab: None,
                lab_read_only: hostlab_ro,
                home: match no_hosthome {
                    true => None,
                    false => std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .filter(|h| h.is_absolute()),
                },
            };
            let image = image
                .or_else(|| std::env::var_os("UML_LAB_IMAGE").map(PathBuf::from))
                .map(|p| std::path::absolute(&p).unwrap_or(p));
            let tools = Tools {
                kernel: kernel.unwrap_or_else(|| tool("linux")),
                switch: tool("uml_switch"),
                relay: if no_capture {
                    None
                } else {
                    std::env::current_exe().ok()
                },
            };
            let opts = StartOptions {
                image,
                machines,
                wait: !no_wait,
                timeout: Duration::from_secs(timeout),
                host_dirs,
                host: args.host.clone(),
            };
            start(&lab, &layout, &tools, &opts, quiet)
        }
        Cmd::Stop {
            force,
            timeout,
            machines,
        } => {
            let lab = Lab::load(&dir).ok();
            let opts = StopOptions {
                machines,
                force,
                timeout: Duration::from_secs(timeout),
            };
            let stopped = run::stop(lab.as_ref(), &layout, &opts)?;
            let mut out = std::io::stdout().lock();
            for (m, how) in stopped {
                writeln!(out, "{m}: {how}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Clean => {
            let lab = Lab::load(&dir).ok();
            let stopped = run::clean(lab.as_ref(), &layout, Duration::from_secs(20))?;
            let mut out = std::io::stdout().lock();
            for (m, how) in stopped {
                writeln!(out, "{m}: {how}")?;
            }
            writeln!(out, "removed {}", layout.dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { json } => {
            let lab = load(&dir)?;
            let st = run::status(&lab, &layout)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &st)?;
                writeln!(out)?;
            } else {
                writeln!(out, "lab {}", st.lab.display())?;
                for m in &st.machines {
                    let pid = m.pid.map_or("-".to_string(), |p| p.to_string());
                    let ifs: Vec<String> = m
                        .interfaces
                        .iter()
                        .map(|(i, d)| format!("{i}={d}"))
                        .collect();
                    writeln!(
                        out,
                        "{:<16} {:<8} {:>8}  {}",
                        m.name,
                        m.state,
                        pid,
                        ifs.join(" ")
                    )?;
                }
                for d in &st.domains {
                    let pid = d.pid.map_or("-".to_string(), |p| p.to_string());
                    let mut kind = if d.hub { "hub" } else { "switch" }.to_string();
                    if let Some(v) = d.vxlan {
                        kind.push_str(&format!(" vxlan {v}"));
                    }
                    writeln!(
                        out,
                        "domain {:<9} {:<8} {:>8}  {kind} {}",
                        d.name,
                        d.state,
                        pid,
                        d.members.join(" ")
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec {
            timeout,
            machine,
            command,
        } => {
            let cmd = command.join(" ");
            let reply = run::exec(
                &layout,
                &machine,
                cmd.as_bytes(),
                timeout.map(Duration::from_secs),
            )?;
            std::io::stdout().lock().write_all(&reply.stdout)?;
            std::io::stderr().lock().write_all(&reply.stderr)?;
            Ok(ExitCode::from(
                u8::try_from(reply.status & 0xff).unwrap_or(1),
            ))
        }
        Cmd::Test { signature, timeout } => {
            let lab = load(&dir)?;
            let results = run::test(&lab, &layout, signature, Duration::from_secs(timeout))?;
            let mut out = std::io::stdout().lock();
            let mut failed = false;
            if results.is_empty() {
                writeln!(out, "no _test/MACHINE.test files in {}", lab.dir.display())?;
            }
            for (m, r) in results {
                match r {
                    TestOutcome::Passed => writeln!(out, "{m}: passed")?,
                    TestOutcome::Signed => writeln!(out, "{m}: signature written")?,
                    TestOutcome::NoSignature => {
                        writeln!(out, "{m}: no signature (results in _test/results/{m}.user)")?
                    }
                    TestOutcome::Failed(line, want, got) => {
                        failed = true;
                        writeln!(
                            out,
                            "{m}: FAILED: _test/results/{m}.user line {line}: expected '{want}', got '{got}'"
                        )?
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Graph { svg } => {
            let lab = load(&dir)?;
            let dot = lab.dot();
            match svg {
                None => std::io::stdout().lock().write_all(dot.as_bytes())?,
                Some(file) => {
                    let mut child = std::process::Command::new("dot")
                        .arg("-Tsvg")
                        .arg("-o")
                        .arg(&file)
                        .stdin(std::process::Stdio::piped())
                        .spawn()
                        .context("cannot run dot (install Graphviz)")?;
                    child
                        .stdin
                        .take()
                        .ok_or_else(|| anyhow!("dot: no input"))?
                        .write_all(dot.as_bytes())?;
                    if !child.wait()?.success() {
                        bail!("dot failed writing {}", file.display());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Image {
            action: ImageAction::Build,
            packages,
            suite,
            mirror,
            size,
            print_recipe,
            quiet,
            out,
        } => {
            let recipe = crate::lab::image::Recipe::new(&packages, &suite, &mirror, size)?;
            match out {
                Some(out) if !print_recipe => image_build(&recipe, &out, quiet),
                _ => {
                    std::io::stdout()
                        .lock()
                        .write_all(recipe.text().as_bytes())?;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Cmd::Capture {
            file,
            count,
            domain,
        } => {
            let lab = load(&dir)?;
            capture(&lab, &layout, &domain, file.as_deref(), count)
        }
        Cmd::CaptureRelay { socket } => {
            let input = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
            crate::lab::capture::relay(input, &socket)
                .with_context(|| format!("capture relay {}", socket.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Console { machine } => {
            console::attach(&layout, &machine)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn start(
    lab: &Lab,
    layout: &Layout,
    tools: &Tools,
    opts: &StartOptions,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let mut err = std::io::stderr();
    for (k, v) in &lab.info {
        let _ = writeln!(err, "{k}: {v}");
    }
    let bar = std::cell::RefCell::new(indicatif::ProgressBar::hidden());
    let started = std::time::Instant::now();
    let names = run::start(lab, layout, tools, opts, &mut |ev| match ev {
        Event::Notice(n) => {
            bar.borrow().suspend(|| eprintln!("uml_lab: {n}"));
        }
        Event::Total(n) => {
            let b = progress(n, quiet);
            *bar.borrow_mut() = b;
        }
        Event::Booting(m) => bar.borrow().set_message(format!("booting {m}")),
        Event::Ready(m) => {
            let b = bar.borrow();
            b.set_message(format!("{m} ready"));
            b.inc(1);
        }
    })?;
    bar.borrow().finish_and_clear();
    let _ = writeln!(
        err,
        "uml_lab: {} machine(s) {} in {:.1} s",
        names.len(),
        if opts.wait { "up" } else { "booting" },
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `uml_lab capture`: the domain's pcap stream from its relay, whole
/// records only, to `file` or standard output.
fn capture(
    lab: &Lab,
    layout: &Layout,
    domain: &str,
    file: Option<&Path>,
    count: Option<u64>,
) -> anyhow::Result<ExitCode> {
    use crate::lab::capture::{Reader, Unit};
    use std::io::IsTerminal;
    if !lab.domains.contains_key(domain) {
        bail!(
            "{domain}: no such collision domain in the lab {} (lab.conf)",
            lab.dir.display()
        );
    }
    let state = crate::lab::state::State::load(layout)?;
    let sw = state
        .switches
        .get(domain)
        .filter(|s| s.proc.alive())
        .ok_or_else(|| anyhow!("collision domain {domain}: not running (uml_lab start)"))?;
    let sock = layout.capture_socket(domain);
    if sw.relay.is_none() || !sock.exists() {
        bail!(
            "collision domain {domain}: its switch has no capture relay (started with --no-capture or by an older uml_lab; stop and start the lab to capture it)"
        );
    }
    let mut out: Box<dyn Write> = match file {
        Some(f) => Box::new(
            std::fs::File::create(f).with_context(|| format!("{}: cannot create", f.display()))?,
        ),
        None => {
            if std::io::stdout().is_terminal() {
                bail!("standard output is a terminal: give -w FILE or pipe it (uml_lab capture {domain} | tcpdump -r -)");
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let mut reader = Reader::connect(&sock)
        .with_context(|| format!("collision domain {domain}: {}", sock.display()))?;
    let mut frames = 0u64;
    while count.is_none_or(|c| frames < c) {
        let Some(unit) = reader
            .next_unit()
            .with_context(|| format!("collision domain {domain}: capture"))?
        else {
            break;
        };
        match unit {
            Unit::Header(h) => out.write_all(&h)?,
            Unit::Record(r) => {
                out.write_all(&r)?;
                frames += 1;
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn progress(total: usize, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:20} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn image_build(
    recipe: &crate::lab::image::Recipe,
    out: &Path,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    use crate::lab::image::Progress;
    use std::io::IsTerminal;
    let terminal = !quiet && std::io::stderr().is_terminal();
    let bar = if terminal {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed:>4} {prefix}: {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let r = crate::lab::image::build(recipe, out, &mut |p| match p {
        Progress::Step(s) => {
            if terminal {
                bar.set_prefix(s);
                bar.set_message("");
            } else if !quiet {
                eprintln!("uml_lab: {s}");
            }
        }
        Progress::Detail(d) => bar.set_message(d),
    });
    bar.finish_and_clear();
    r?;
    if !quiet {
        eprintln!(
            "uml_lab: wrote {} in {:.0} s",
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}
