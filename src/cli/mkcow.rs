//! `uml_mkcow [-f] COW BACKING`: make an empty COW file for a backing file.

use crate::cow::create_cow;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Create a UML copy-on-write file over a backing file.
#[derive(Debug, Parser)]
#[command(
    name = "uml_mkcow",
    version,
    about = "Create a UML copy-on-write (COW) file over a backing file",
    after_help = "The COW file gets a version 3 header naming BACKING by its absolute path, \
                  sector size 512 and alignment 4096; its bitmap and data area are left sparse. \
                  Exit status: 0 on success, 1 on failure, 2 on a usage error."
)]
pub struct Args {
    /// Replace COW if it already exists.
    ///
    /// Without it an existing file is left alone and uml_mkcow fails with
    /// "File exists".
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// The COW file to create.
    pub cow: PathBuf,
    /// The backing file (the shared, read-only image).
    pub backing: PathBuf,
}

/// Runs `uml_mkcow` with the process's arguments.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return super::usage_error(e, 2),
    };
    match create_cow(&args.cow, &args.backing, args.force) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => super::report("uml_mkcow", &e.into(), 1),
    }
}
