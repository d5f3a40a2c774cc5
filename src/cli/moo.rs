//! `uml_moo`: merge a COW file with its backing file.
//!
//! ```text
//! uml_moo [-b BACKING] COW NEW          new image
//! uml_moo [-b BACKING] -d COW           in place, into the backing file
//! uml_moo BACKING COW NEW               new image, backing named first
//! ```

use crate::cow::merge::{merge_in_place, merge_to_new, InPlaceOptions, MergeOptions};
use anyhow::bail;
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Merge a UML COW file with its backing file.
#[derive(Debug, Parser)]
#[command(
    name = "uml_moo",
    version,
    about = "Merge a UML copy-on-write (COW) file with its backing file",
    override_usage = "uml_moo [OPTIONS] [-b BACKING] COW NEW\n       uml_moo [OPTIONS] [-b BACKING] -d COW\n       uml_moo [OPTIONS] BACKING COW NEW",
    after_help = "A new image is built in a temporary file beside NEW and renamed into place when \
                  complete; holes of the backing file and all-zero blocks of the COW stay holes. -d writes only the COW's sectors into the \
                  backing file, after saying which file on standard error, and only into a file \
                  that looks like a disk image unless --force; if it is interrupted, the same \
                  command finishes it. \
                  Exit status: 0 on success, 1 on any failure or usage error."
)]
pub struct Args {
    /// Use BACKING instead of the backing file named in the COW header.
    ///
    /// For COW files made inside a chroot, or an image that has moved. Its
    /// size and mtime must still match the header. May be given before or
    /// after -d.
    #[arg(short = 'b', long = "backing", value_name = "BACKING")]
    pub backing: Option<PathBuf>,
    /// Merge in place: write the COW's sectors into the backing file
    /// instead of writing a new image.
    #[arg(short = 'd', long = "in-place")]
    pub in_place: bool,
    /// With -d: afterwards empty the COW and record the merged backing
    /// file's new mtime, so the guest can go on booting from it.
    ///
    /// The COW's bitmap is cleared and its data area freed, as qemu-img
    /// commit leaves a qcow2 overlay.
    #[arg(long = "reset-cow", requires = "in_place")]
    pub reset_cow: bool,
    /// With -d: merge even into a backing file that has no filesystem or
    /// partition table signature (one that does not look like a disk image).
    ///
    /// Check the file named in the "merging ... into" line, or with
    /// uml_cow info, first. The file type (a regular file or a block device)
    /// is never waived.
    #[arg(long = "force", requires = "in_place")]
    pub force: bool,
    /// Do not fsync the result (faster; not safe against power loss).
    ///
    /// Without it the result is synced before it is renamed into place (or,
    /// with -d, before the marker file is removed).
    #[arg(long = "no-sync")]
    pub no_sync: bool,
    /// No progress bar, and with -d no line saying which file is written.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// COW NEW, or -d COW, or BACKING COW NEW.
    #[arg(value_name = "FILE", num_args = 1..=3, required = true)]
    pub files: Vec<PathBuf>,
}

/// What the arguments ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Job {
    /// Write a new image.
    New {
        /// The COW file.
        cow: PathBuf,
        /// The backing file, when named.
        backing: Option<PathBuf>,
        /// The image to write.
        out: PathBuf,
    },
    /// Merge into the backing file.
    InPlace {
        /// The COW file.
        cow: PathBuf,
        /// The backing file, when named.
        backing: Option<PathBuf>,
    },
}

impl Args {
    /// Sorts out the three forms of the command line.
    pub fn job(&self) -> anyhow::Result<Job> {
        let f = &self.files;
        match (self.in_place, f.len()) {
            (true, 1) => Ok(Job::InPlace {
                cow: f[0].clone(),
                backing: self.backing.clone(),
            }),
            (false, 2) => Ok(Job::New {
                cow: f[0].clone(),
                backing: self.backing.clone(),
                out: f[1].clone(),
            }),
            (false, 3) if self.backing.is_none() => Ok(Job::New {
                backing: Some(f[0].clone()),
                cow: f[1].clone(),
                out: f[2].clone(),
            }),
            (false, 3) => bail!("-b cannot be given with the BACKING COW NEW form"),
            (true, _) => bail!("-d takes exactly one COW file"),
            (false, _) => bail!("expected COW NEW or BACKING COW NEW"),
        }
    }
}

/// Runs `uml_moo` with the process's arguments.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return super::usage_error(e, 1),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::report("uml_moo", &e, 1),
    }
}

/// The line that says which file an in-place merge is about to write.
fn announce(cow: &Path, backing: &Path, resumed: bool) {
    eprintln!(
        "uml_moo: {} {} into {} in place",
        if resumed {
            "finishing the merge of"
        } else {
            "merging"
        },
        cow.display(),
        backing.display()
    );
}

fn run(args: &Args) -> anyhow::Result<()> {
    let job = args.job()?;
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, cancel.clone())?;
    }
    let mut options = MergeOptions {
        cancel: Some(cancel),
        sync: !args.no_sync,
        progress: super::progress_bar(0, args.quiet, "merging"),
        ..Default::default()
    };
    match job {
        Job::New { cow, backing, out } => {
            options.backing_override = backing;
            merge_to_new(&cow, &out, &options)?;
        }
        Job::InPlace { cow, backing } => {
            options.backing_override = backing;
            let extra = InPlaceOptions {
                reset_cow: args.reset_cow,
                force: args.force,
                announce: (!args.quiet).then_some(announce as fn(&Path, &Path, bool)),
            };
            let stats = merge_in_place(&cow, &options, &extra)?;
            if stats.resumed && !args.quiet {
                eprintln!(
                    "uml_moo: finished an interrupted merge of {}",
                    cow.display()
                );
            }
        }
    }
    Ok(())
}
