//! `uml_lab console MACHINE`: the machine's console in this terminal.
//! Output is the console log followed as it grows; input goes to the
//! console's FIFO; Ctrl-] detaches (the machine goes on running).

use crate::lab::state::{Layout, State};
use anyhow::{bail, Context};
use nix::sys::termios;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The detach key, Ctrl-].
const DETACH: u8 = 0x1d;

/// Puts standard input in raw mode while alive.
struct Raw(Option<termios::Termios>);

impl Raw {
    fn enter() -> Raw {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Raw(None);
        }
        let Ok(old) = termios::tcgetattr(&stdin) else {
            return Raw(None);
        };
        let mut raw = old.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        Raw(Some(old))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, old);
        }
    }
}

/// Attaches to `machine`'s console until Ctrl-], end of input or the
/// machine's end.
pub fn attach(layout: &Layout, machine: &str) -> anyhow::Result<()> {
    let state = State::load(layout)?;
    let Some(proc) = state
        .machines
        .get(machine)
        .map(|m| m.proc)
        .filter(|p| p.alive())
    else {
        bail!("{machine}: not running");
    };
    let log_path = layout.console_log(machine);
    let mut log =
        std::fs::File::open(&log_path).with_context(|| format!("{}", log_path.display()))?;
    let len = log.seek(SeekFrom::End(0))?;
    log.seek(SeekFrom::Start(len.saturating_sub(2048)))?;
    let in_path = layout.console_in(machine);
    let mut input = std::fs::OpenOptions::new()
        .write(true)
        .open(&in_path)
        .with_context(|| format!("{}", in_path.display()))?;
    eprintln!("uml_lab: {machine}'s console; Ctrl-] detaches\r");
    let done = AtomicBool::new(false);
    let _raw = Raw::enter();
    std::thread::scope(|s| -> anyhow::Result<()> {
        s.spawn(|| {
            let mut buf = vec![0u8; 8192];
            let mut out = std::io::stdout();
            while !done.load(Ordering::Relaxed) {
                match log.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        if !proc.alive() {
                            done.store(true, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Ok(n) => {
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                }
            }
        });
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 1024];
        let r = loop {
            if done.load(Ordering::Relaxed) {
                break Ok(());
            }
            let n = match stdin.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e.into()),
            };
            let chunk = &buf[..n];
            let (keep, stop) = match chunk.iter().position(|&b| b == DETACH) {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            if let Err(e) = input.write_all(keep) {
                break Err(e.into());
            }
            if stop {
                break Ok(());
            }
        };
        done.store(true, Ordering::Relaxed);
        r
    })?;
    eprintln!("\r\numl_lab: detached from {machine}\r");
    Ok(())
}
