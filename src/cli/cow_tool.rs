//! `uml_cow`: inspect, check and rebase COW files.

use crate::cow::header::Header;
use crate::cow::open::{backing_identity, read_bitmap, read_header, rewrite_backing};
use crate::cow::CowError;
use crate::sys::fs::{lock_file, LockError};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Inspect and maintain UML COW files.
#[derive(Debug, Parser)]
#[command(
    name = "uml_cow",
    version,
    about = "Inspect, check and rebase UML copy-on-write (COW) files",
    after_help = "Exit status: 0 on success (for check: the file is consistent), 1 on failure or \
                  when check finds a problem, 2 on a usage error."
)]
pub struct Args {
    /// Print JSON instead of text.
    ///
    /// One JSON object, for scripts. May be given before or after the
    /// subcommand.
    #[arg(long = "json", global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the header, the backing file's state and how much is dirty.
    Info {
        /// The COW file.
        cow: PathBuf,
        /// Compare with BACKING instead of the recorded backing file.
        #[arg(short = 'b', long = "backing", value_name = "BACKING")]
        backing: Option<PathBuf>,
    },
    /// Point the COW at a moved or copied backing file of the same size and
    /// record its mtime.
    Rebase {
        /// The COW file.
        cow: PathBuf,
        /// The new backing file.
        new_backing: PathBuf,
    },
    /// Check the header, the bitmap and the file length.
    Check {
        /// The COW file.
        cow: PathBuf,
    },
    /// Convert between a UML COW file, a qcow2 overlay and a raw image.
    ///
    /// The source format is detected. A COW file becomes a qcow2 (v3)
    /// overlay over the same backing file, a qcow2 overlay over a raw
    /// backing file becomes a COW file, and either becomes a sparse raw
    /// image of the merged disk.
    Convert {
        /// The output format: cow, qcow2 or raw.
        #[arg(short = 'O', value_name = "FORMAT", value_parser = ["cow", "qcow2", "raw"])]
        format: String,
        /// No progress bar.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// The source file.
        src: PathBuf,
        /// The file to write (built beside it and renamed into place).
        dst: PathBuf,
    },
}

/// Runs `uml_cow` with the process's arguments.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => return super::usage_error(e, 2),
    };
    let result = match &args.command {
        Command::Info { cow, backing } => info(cow, backing.as_deref(), args.json),
        Command::Rebase { cow, new_backing } => rebase(cow, new_backing, args.json),
        Command::Check { cow } => check(cow, args.json),
        Command::Convert {
            format,
            quiet,
            src,
            dst,
        } => convert(format, *quiet, src, dst),
    };
    match result {
        Ok(code) => code,
        Err(e) => super::report("uml_cow", &e, 1),
    }
}

fn convert(format: &str, quiet: bool, src: &Path, dst: &Path) -> anyhow::Result<ExitCode> {
    use crate::cow::convert::{self, Format};
    let to = match format {
        "cow" => Format::Cow,
        "qcow2" => Format::Qcow2,
        _ => Format::Raw,
    };
    let bar = super::progress_bar(0, quiet, "converting");
    convert::convert(src, dst, to, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}

fn open_header(path: &Path, write: bool) -> anyhow::Result<(File, Header)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| CowError::io(path, "cannot open", e))?;
    let header = read_header(&file, path)?.ok_or_else(|| CowError::Header {
        path: path.to_path_buf(),
        source: crate::cow::HeaderError::NotCow,
    })?;
    Ok((file, header))
}

/// What `info` reports.
#[derive(Debug, serde::Serialize)]
pub struct Info {
    /// The COW file.
    pub cow: PathBuf,
    /// Format version.
    pub version: u32,
    /// Layout name.
    pub layout: String,
    /// Recorded backing path.
    pub backing_file: String,
    /// Recorded backing size.
    pub size: u64,
    /// Recorded backing mtime.
    pub mtime: u32,
    /// The backing file's state now.
    pub backing_status: String,
    /// Whether the backing file matches the header.
    pub backing_matches: bool,
    /// Sector size.
    pub sector_size: u32,
    /// Alignment.
    pub alignment: u32,
    /// Bitmap offset.
    pub bitmap_offset: u64,
    /// Data area offset.
    pub data_offset: u64,
    /// Sectors held in the COW.
    pub dirty_sectors: u64,
    /// Bytes held in the COW.
    pub dirty_bytes: u64,
    /// Length of the COW file.
    pub file_length: u64,
    /// Bytes the COW file occupies on disk.
    pub allocated_bytes: u64,
}

fn info(path: &Path, backing: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let (file, header) = open_header(path, false)?;
    let bitmap = read_bitmap(&file, path, &header)?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?;
    let backing_path = backing.map_or_else(
        || PathBuf::from(OsStr::from_bytes(&header.backing_file)),
        Path::to_path_buf,
    );
    let (backing_status, backing_matches) =
        match crate::cow::open::check_backing(&header, &backing_path, false) {
            Ok(()) => ("matches".to_string(), true),
            Err(e) => (e.to_string(), false),
        };
    let dirty = bitmap.count_set();
    let info = Info {
        cow: path.to_path_buf(),
        version: header.layout.version(),
        layout: header.layout.to_string(),
        backing_file: header.backing_display(),
        size: header.size,
        mtime: header.mtime,
        backing_status,
        backing_matches,
        sector_size: header.sector_size,
        alignment: header.alignment,
        bitmap_offset: header.bitmap_offset,
        data_offset: header.data_offset,
        dirty_sectors: dirty,
        dirty_bytes: dirty * u64::from(header.sector_size),
        file_length: meta.len(),
        allocated_bytes: meta.blocks() * 512,
    };
    let mut o = std::io::stdout().lock();
    if json {
        writeln!(o, "{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        let pct = if header.sectors() == 0 {
            0.0
        } else {
            100.0 * dirty as f64 / header.sectors() as f64
        };
        writeln!(o, "COW file:       {}", path.display())?;
        writeln!(o, "version:        {}", info.layout)?;
        writeln!(o, "backing file:   {}", info.backing_file)?;
        writeln!(o, "backing size:   {} bytes", info.size)?;
        writeln!(o, "backing mtime:  {}", info.mtime)?;
        writeln!(o, "backing status: {}", info.backing_status)?;
        writeln!(o, "sector size:    {}", info.sector_size)?;
        writeln!(o, "alignment:      {}", info.alignment)?;
        writeln!(o, "bitmap offset:  {}", info.bitmap_offset)?;
        writeln!(o, "data offset:    {}", info.data_offset)?;
        writeln!(
            o,
            "dirty:          {} sectors, {} bytes ({pct:.2}%)",
            dirty, info.dirty_bytes
        )?;
        writeln!(o, "file length:    {} bytes", info.file_length)?;
        writeln!(o, "allocated:      {} bytes", info.allocated_bytes)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rebase(path: &Path, new_backing: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (file, header) = open_header(path, true)?;
    match lock_file(&file, true) {
        Ok(()) => {}
        Err(LockError::InUse) => {
            return Err(CowError::InUse {
                path: path.to_path_buf(),
                pid: crate::sys::fs::lock_holder(&file).ok().flatten(),
            }
            .into())
        }
        Err(LockError::Io(e)) => return Err(CowError::io(path, "cannot lock", e).into()),
    }
    let (size, _) = backing_identity(new_backing)?;
    if size != header.size {
        anyhow::bail!(
            "{}: size {} differs from the {} bytes recorded in {}; refusing to rebase",
            new_backing.display(),
            size,
            header.size,
            path.display()
        );
    }
    let new = rewrite_backing(&file, path, &header, new_backing)?;
    let mut o = std::io::stdout().lock();
    if json {
        let out = serde_json::json!({
            "cow": path,
            "backing_file": new.backing_display(),
            "mtime": new.mtime,
            "previous_backing_file": header.backing_display(),
            "previous_mtime": header.mtime,
        });
        writeln!(o, "{out}")?;
    } else {
        writeln!(
            o,
            "{}: backing file is now {} (mtime {})",
            path.display(),
            new.backing_display(),
            new.mtime
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let (file, header) = open_header(path, false)?;
    match read_bitmap(&file, path, &header) {
        Ok(bitmap) => {
            if bitmap.has_bits_past_end() {
                problems.push("bitmap has bits set past the last sector".to_string());
            }
            notes.push(format!(
                "{} of {} sectors in the COW",
                bitmap.count_set(),
                header.sectors()
            ));
        }
        Err(e) => problems.push(e.to_string()),
    }
    let len = file.metadata()?.len();
    if len > header.file_len_needed() {
        notes.push(format!(
            "file is {} bytes longer than its data area needs",
            len - header.file_len_needed()
        ));
    }
    if header.bitmap_len < header.bitmap_bytes_needed() {
        notes.push("version 1/2 bitmap is one byte short (historic rounding bug)".to_string());
    }
    let backing = PathBuf::from(OsStr::from_bytes(&header.backing_file));
    if let Err(e) = crate::cow::open::check_backing(&header, &backing, false) {
        notes.push(format!("backing file: {e}"));
    }
    let mut o = std::io::stdout().lock();
    if json {
        let out = serde_json::json!({ "cow": path, "ok": problems.is_empty(), "problems": problems, "notes": notes });
        writeln!(o, "{out}")?;
    } else {
        for p in &problems {
            writeln!(o, "{}: problem: {p}", path.display())?;
        }
        for n in &notes {
            writeln!(o, "{}: note: {n}", path.display())?;
        }
        if problems.is_empty() {
            writeln!(o, "{}: consistent", path.display())?;
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
