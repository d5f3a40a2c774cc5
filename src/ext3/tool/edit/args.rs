//! The argument table of the editing subcommands (clap derive), flattened
//! into `uml_fs`'s subcommand list.

use clap::{Args as ClapArgs, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Options every editing command takes.
#[derive(Debug, Clone, ClapArgs)]
pub struct EditOpts {
    /// Print what would change and leave the disk untouched.
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
        /// Owner of everything copied as UID:GID (default: the host owner).
        #[arg(long = "owner")]
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
        /// Create missing parents; no error if it exists.
        #[arg(short = 'p')]
        parents: bool,
        /// The disk.
        device: String,
        /// Directories to create.
        #[arg(required = true)]
        paths: Vec<OsString>,
    },
    /// Remove files (and with -r directory trees).
    Rm {
        #[command(flatten)]
        opts: EditOpts,
        /// Remove directories and their contents.
        #[arg(short = 'r')]
        recursive: bool,
        /// The disk.
        device: String,
        /// Paths to remove.
        #[arg(required = true)]
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
        /// Make a symbolic link holding TARGET.
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
        #[arg(required = true)]
        paths: Vec<OsString>,
    },
    /// Change owner and group (UID[:GID], numeric).
    Chown {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// UID or UID:GID.
        owner: String,
        /// Paths to change.
        #[arg(required = true)]
        paths: Vec<OsString>,
    },
    /// Set access and modification times to now, creating empty files.
    Touch {
        #[command(flatten)]
        opts: EditOpts,
        /// The disk.
        device: String,
        /// Paths to touch.
        #[arg(required = true)]
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
