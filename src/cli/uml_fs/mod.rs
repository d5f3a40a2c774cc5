//! `uml_fs`'s front end: look inside a guest's disk (plain image, COW file naming its
//! backing, or `COW,BACKING`) as a normal user, without merging or
//! mounting. The argument table lives here so the man page can follow it;
//! `src/bin/uml_fs.rs` only calls [`main`].

mod complete;
mod diff;
mod dir_index;
mod edit;
mod extract;
mod find;
mod format;
mod mount;
mod show;

use crate::block::BlockDevice;
use crate::cow::{open_disk, Disk, DiskOptions};
use crate::ext3::tool::unchanged_in_cow;
use crate::ext3::{Ext3, OpenOptions};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

/// Look inside ext2/ext3/ext4 guest disks without root.
#[derive(Debug, Parser)]
#[command(
    name = "uml_fs",
    version,
    about = "Look inside and edit a UML guest's ext2/ext3/ext4 disk (image, COW or COW,BACKING) \
             without root",
    after_help = "DEVICE is written as for the kernel's ubdN=: IMAGE (a plain image, or a COW file \
                  whose header names its backing file) or COW,BACKING.\n\n\
                  Exit status: 0 on success, 1 on failure (I/O error, corrupt or unsupported \
                  filesystem, missing path), 2 on a usage error."
)]
pub struct Args {
    /// Read the disk as it is, without replaying a journal that needs recovery.
    ///
    /// Allowed before or after the subcommand.
    #[arg(long = "no-replay", global = true)]
    pub no_replay: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Superblock summary: features, clean or needs recovery, free space.
    Info {
        /// The disk.
        device: String,
    },
    /// List a directory.
    Ls {
        /// Long listing: type and mode, links, owner and group (numbers),
        /// size or device number, modification time (UTC), name and symlink
        /// target.
        #[arg(short = 'l')]
        long: bool,
        /// List subdirectories recursively, each under a PATH: header.
        #[arg(short = 'R')]
        recursive: bool,
        /// The disk.
        device: String,
        /// Path inside the image.
        #[arg(default_value = "/", add = complete::image_paths())]
        path: OsString,
    },
    /// Write files' contents to standard output.
    Cat {
        /// The disk.
        device: String,
        /// Paths inside the image.
        #[arg(required = true, value_name = "PATH", add = complete::image_paths())]
        paths: Vec<OsString>,
    },
    /// Show an inode's metadata.
    Stat {
        /// The disk.
        device: String,
        /// Path inside the image.
        #[arg(add = complete::image_paths())]
        path: OsString,
    },
    /// List paths below PATH, optionally filtered by name and type.
    Find {
        /// The disk.
        device: String,
        /// Where to start.
        #[arg(default_value = "/", add = complete::image_paths())]
        path: OsString,
        /// Only names matching the shell pattern GLOB (*, ?, [...], \); also
        /// spelled -name.
        #[arg(long = "name", value_name = "GLOB")]
        name: Option<OsString>,
        /// Only this type: f (regular file), d, l, c, b, p (FIFO) or s; also
        /// spelled -type.
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<char>,
    },
    /// Copy a file or tree out to the host, keeping modes, times, symlinks,
    /// hard links and holes.
    Extract {
        /// The disk.
        device: String,
        /// Path inside the image.
        #[arg(add = complete::image_paths())]
        path: OsString,
        /// Destination on the host (inside it when it is a directory).
        dest: PathBuf,
    },
    /// What a COW changed compared with its backing file.
    Diff {
        /// Print a JSON array of {"path": ..., "change": ...} objects instead
        /// of text.
        #[arg(long = "json")]
        json: bool,
        /// The COW disk: COW (backing named in its header) or COW,BACKING.
        #[arg(value_name = "COW[,BACKING]")]
        device: String,
    },
    /// Mount the disk's filesystem at DIR through FUSE, as a normal user.
    ///
    /// Read-write by default: a journal that needs recovery is replayed
    /// into the image or COW first, changes are journaled, and unmounting
    /// commits and marks the filesystem clean. With -o ro the journal is
    /// replayed in memory and nothing is written. The disk is locked as the
    /// kernel locks it, so a disk a running guest holds is refused. The
    /// command returns once the mount is up and the server runs in the
    /// background (unless -f); unmount with `uml_fs umount DIR` or
    /// `fusermount3 -u DIR`.
    Mount {
        /// Mount options, comma-separated: ro, rw (default), allow_other,
        /// allow_root (both imply default_permissions), default_permissions,
        /// nosuid, suid, nodev, dev, noexec, exec, noatime, atime, sync,
        /// async, dirsync.
        #[arg(short = 'o', value_name = "OPTIONS")]
        options: Vec<String>,
        /// Stay in the foreground; SIGINT, SIGTERM or SIGHUP unmount.
        #[arg(short = 'f')]
        foreground: bool,
        /// The disk.
        device: String,
        /// The mount point (an existing directory).
        dir: PathBuf,
    },
    /// Unmount a `uml_fs mount` and wait until the filesystem is committed
    /// and clean.
    Umount {
        /// The mount point.
        dir: PathBuf,
    },
    /// Editing commands (put, mkdir, rm, mv, ln, chmod, chown, touch, write).
    #[command(flatten)]
    Edit(edit::EditCommand),
}

/// `find`-style single-dash options spelled as clap's long options.
fn normalize(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    args.map(|a| match a.to_str() {
        Some("-name") => OsString::from("--name"),
        Some("-type") => OsString::from("--type"),
        _ => a,
    })
    .collect()
}

/// Opens the disk named by `spec` read-only.
pub fn open_device(spec: &str) -> anyhow::Result<Disk> {
    open_disk(spec, &DiskOptions::default()).map_err(|e| edit::open_error(e, false))
}

/// Opens the filesystem on a device.
pub fn open_fs<D: BlockDevice>(dev: D, spec: &str, no_replay: bool) -> anyhow::Result<Ext3<D>> {
    let options = OpenOptions {
        replay_journal: !no_replay,
    };
    Ext3::open_with(dev, options).map_err(|e| anyhow::anyhow!("{spec}: {}", edit::one_line(&e)))
}

/// Runs `uml_fs` with the process's arguments.
pub fn main() -> ExitCode {
    // With COMPLETE=<shell> in the environment: print the shell's
    // registration or the candidates for the command line, and exit.
    clap_complete::CompleteEnv::with_factory(<Args as clap::CommandFactory>::command).complete();
    let args = match Args::try_parse_from(normalize(std::env::args_os())) {
        Ok(a) => a,
        Err(e) => return crate::cli::usage_error(e, 2),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::cli::report("uml_fs", &e, 1),
    }
}

/// Runs one parsed command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let nr = args.no_replay;
    match &args.command {
        Command::Info { device } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            show::info(&fs)
        }
        Command::Ls {
            long,
            recursive,
            device,
            path,
        } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            show::ls(&fs, path.as_encoded_bytes(), *long, *recursive)
        }
        Command::Cat { device, paths } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            show::cat(&fs, paths)
        }
        Command::Stat { device, path } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            show::stat(&fs, path.as_encoded_bytes())
        }
        Command::Find {
            device,
            path,
            name,
            kind,
        } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            find::find(
                &fs,
                path.as_encoded_bytes(),
                name.as_ref().map(|n| n.as_encoded_bytes()),
                *kind,
            )
        }
        Command::Extract { device, path, dest } => {
            let fs = open_fs(open_device(device)?, device, nr)?;
            extract::extract(&fs, path.as_encoded_bytes(), dest)
        }
        Command::Diff { json, device } => {
            let disk = open_device(device)?;
            let backing = disk.backing().with_context(|| {
                format!("{device}: not a COW disk (diff compares a COW with its backing file)")
            })?;
            let old = open_fs(backing, &format!("{device} (backing view)"), nr)?;
            let new = open_fs(&disk, &format!("{device} (COW view)"), nr)?;
            let unchanged = |bytes: Range<u64>| unchanged_in_cow(&disk, &old, &new, bytes);
            diff::print(&old, &new, &unchanged, *json)
        }
        Command::Mount {
            options,
            foreground,
            device,
            dir,
        } => mount::mount(device, dir, options, *foreground),
        Command::Umount { dir } => mount::umount(dir),
        Command::Edit(cmd) => edit::run(cmd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_style_options_are_accepted() {
        let argv = [
            "uml_fs", "find", "img", "/etc", "-name", "*.conf", "-type", "f",
        ]
        .map(OsString::from);
        let a = Args::try_parse_from(normalize(argv.into_iter())).unwrap();
        let Command::Find { name, kind, .. } = a.command else {
            panic!()
        };
        assert_eq!(name, Some(OsString::from("*.conf")));
        assert_eq!(kind, Some('f'));
    }

    #[test]
    fn clap_table_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
