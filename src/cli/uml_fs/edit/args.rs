//! The argument table of the editing subcommands (clap derive), flattened
//! into `uml_fs`'s subcommand list.

use clap::{Args as ClapArgs, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Options every editing command takes.
#[derive(Debug, Clone, ClapArgs)]
pub struct EditOpts {
    /// Print what would change and leave the disk untouched.
    ///
    /// Each change (create, write, mkdir, rm, rename, link, chmod, chown,
    /// touch) is printed; the command runs against an in-memory overlay of
    /// the disk.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// The editing subcommands.
#[derive(Debug, Subcommand)]
pub enum EditCommand {
    /// Copy a host file or tree into the image (an existing file is replaced).
    Put {
        #[command(flatten)]
        opts: EditOpts,
        /// Owner and group of everything copied, instead of the host files'
        /// owners.
        #[arg(long = "owner", value_name = "UID:GID")]
        owner: Option<String>,
        /// The disk.
        device: String,
        /// File or directory on the host.
        host_path: PathBuf,
        /// Destination inside the image (inside it when it is a directory).
        path: OsString,
    },
    /// Create directories.
    Mkdir {
        #[command(flatten)]
        opts: EditOpts,
        /// Create missing parents; an existing directory is not an error.
        #[arg(short = 'p')]
        parents: bool,
        /// The disk.
        device: String,
        /// Directories to create.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Remove files (and with -r directory trees).
    Rm {
        #[command(flatten)]
        opts: EditOpts,
        /// Remove directories and everything below them.
        #[arg(short = 'r')]
        recursive: bool,
        /// The disk.
        device: String,
        /// Paths to remove.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Rename or move (into DEST when it is a directory).
    Mv {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// Existing path.
        src: OsString,
        /// New path.
        dest: OsString,
    },
    /// Make a hard link, or with -s a symbolic link.
    Ln {
        #[command(flatten)]
        opts: EditOpts,
        /// Make a symbolic link whose contents are TARGET.
        #[arg(short = 's')]
        symbolic: bool,
        /// The disk.
        device: String,
        /// Existing path (or any text with -s).
        target: OsString,
        /// The new name.
        link: OsString,
    },
    /// Change permission bits (octal).
    Chmod {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// Octal mode, e.g. 644.
        mode: String,
        /// Paths to change.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Change owner and group (UID[:GID], numeric).
    Chown {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// UID or UID:GID.
        #[arg(value_name = "UID[:GID]")]
        owner: String,
        /// Paths to change.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Set access and modification times to now, creating empty files.
    Touch {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// Paths to touch.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<OsString>,
    },
    /// Replace a file's contents with standard input (creating it).
    Write {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// File inside the image.
        path: OsString,
    },
}

/// A chmod mode: octal permission bits.
pub fn parse_mode(mode: &str) -> Option<u32> {
    u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777)
}

/// A chown owner: `UID` or `UID:GID`, numeric.
pub fn parse_owner(s: &str) -> anyhow::Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .map_err(|_| anyhow::anyhow!("bad uid {u:?} (numeric ids only)"))?;
    let gid = g
        .map(|g| {
            g.parse()
                .map_err(|_| anyhow::anyhow!("bad gid {g:?} (numeric ids only)"))
        })
        .transpose()?;
    Ok((uid, gid))
}

/// The command line with the mode (or owner) where it belongs, when the
/// words given look like DEVICE and MODE swapped (`chmod 755 IMG PATH`, as
/// chmod(1) takes them) or like the mode last (`chmod IMG PATH 755`).
fn reordered(
    cmd: &str,
    device: &str,
    value: &str,
    paths: &[OsString],
    fits: impl Fn(&str) -> bool,
) -> Option<String> {
    let shown = |p: &OsString| p.to_string_lossy().into_owned();
    let (device, value, paths): (&str, String, Vec<String>) = if fits(device) {
        (value, device.to_string(), paths.iter().map(shown).collect())
    } else {
        let (last, rest) = paths.split_last()?;
        let last = last.to_str().filter(|l| fits(l))?;
        let rest = std::iter::once(value.to_string()).chain(rest.iter().map(shown));
        (device, last.to_string(), rest.collect())
    };
    Some(format!("uml_fs {cmd} {device} {value} {}", paths.join(" ")))
}

impl EditCommand {
    /// Checks the arguments that need no disk (chmod's mode, chown's and
    /// put's owner), so bad input is refused before the disk is opened or a
    /// COW file created.
    pub fn check(&self) -> anyhow::Result<()> {
        match self {
            EditCommand::Chmod {
                device,
                mode,
                paths,
                ..
            } if parse_mode(mode).is_none() => {
                let hint = reordered("chmod", device, mode, paths, |m| parse_mode(m).is_some())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                anyhow::bail!("chmod: bad mode {mode:?} (octal, e.g. 644){hint}")
            }
            EditCommand::Chown {
                device,
                owner,
                paths,
                ..
            } => parse_owner(owner).map(drop).map_err(|e| {
                let hint = reordered("chown", device, owner, paths, |o| parse_owner(o).is_ok())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                anyhow::anyhow!("chown: {e}{hint}")
            }),
            EditCommand::Put {
                owner: Some(owner), ..
            } => parse_owner(owner)
                .map(drop)
                .map_err(|e| anyhow::anyhow!("put: --owner: {e}")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_mode_given_first_or_last_is_put_back_in_the_hint() {
        let octal = |m: &str| parse_mode(m).is_some();
        assert_eq!(
            reordered("chmod", "755", "a.cow", &words(&["/x"]), octal).as_deref(),
            Some("uml_fs chmod a.cow 755 /x")
        );
        assert_eq!(
            reordered("chmod", "a.cow", "/x", &words(&["/y", "755"]), octal).as_deref(),
            Some("uml_fs chmod a.cow 755 /x /y")
        );
        assert_eq!(reordered("chmod", "a", "b", &words(&["c"]), octal), None);
    }

    #[test]
    fn modes_are_octal_permission_bits_and_owners_numeric() {
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("8"), None);
        assert_eq!(parse_mode("10000"), None);
        assert_eq!(parse_owner("5:6").unwrap(), (5, Some(6)));
        assert_eq!(parse_owner("5").unwrap(), (5, None));
        assert!(parse_owner("root").is_err());
    }
}
