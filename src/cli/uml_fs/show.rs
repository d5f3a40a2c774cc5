//! `info`, `ls`, `cat` and `stat`.

use super::format::{ctime, full_time, mode_string, short_time, type_name};
use crate::block::BlockDevice;
use crate::ext3::features::all_names;
use crate::ext3::superblock::{STATE_ERROR, STATE_VALID};
use crate::ext3::walk::join;
use crate::ext3::{Ext3, FileType, Metadata};
use anyhow::Context;
use std::ffi::OsString;
use std::io::{BufWriter, Write};

fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Prints the superblock summary; the labels and numbers are those of
/// `dumpe2fs -h`, plus the journal state.
pub fn info<D: BlockDevice>(fs: &Ext3<D>) -> anyhow::Result<()> {
    let sb = fs.disk_superblock();
    let mut o = BufWriter::new(std::io::stdout().lock());
    let line = |o: &mut BufWriter<_>, k: &str, v: String| writeln!(o, "{:<26}{v}", format!("{k}:"));
    let name = if sb.s_volume_name.is_empty() {
        "<none>".into()
    } else {
        sb.volume_name()
    };
    line(&mut o, "Filesystem volume name", name)?;
    let lm = if sb.s_last_mounted.is_empty() {
        "<not available>".into()
    } else {
        shown(&sb.s_last_mounted)
    };
    line(&mut o, "Last mounted on", lm)?;
    line(&mut o, "Filesystem UUID", sb.uuid())?;
    line(&mut o, "Filesystem magic number", "0xEF53".into())?;
    let rev = if sb.s_rev_level == 0 {
        "0 (original)".into()
    } else {
        format!("{} (dynamic)", sb.s_rev_level)
    };
    line(&mut o, "Filesystem revision #", rev)?;
    let feats = all_names(
        sb.s_feature_compat,
        sb.s_feature_incompat,
        sb.s_feature_ro_compat,
    );
    line(
        &mut o,
        "Filesystem features",
        if feats.is_empty() {
            "(none)".into()
        } else {
            feats.join(" ")
        },
    )?;
    let mut state = if sb.s_state & STATE_VALID != 0 {
        "clean"
    } else {
        "not clean"
    }
    .to_string();
    if sb.s_state & STATE_ERROR != 0 {
        state.push_str(" with errors");
    }
    line(&mut o, "Filesystem state", state)?;
    line(&mut o, "Inode count", sb.s_inodes_count.to_string())?;
    line(&mut o, "Block count", sb.s_blocks_count.to_string())?;
    line(
        &mut o,
        "Reserved block count",
        sb.s_r_blocks_count.to_string(),
    )?;
    line(&mut o, "Free blocks", sb.s_free_blocks_count.to_string())?;
    line(&mut o, "Free inodes", sb.s_free_inodes_count.to_string())?;
    line(&mut o, "First block", sb.s_first_data_block.to_string())?;
    line(&mut o, "Block size", sb.block_size().to_string())?;
    line(
        &mut o,
        "Blocks per group",
        sb.s_blocks_per_group.to_string(),
    )?;
    line(
        &mut o,
        "Inodes per group",
        sb.s_inodes_per_group.to_string(),
    )?;
    line(&mut o, "Filesystem created", ctime(sb.s_mkfs_time))?;
    line(&mut o, "Last mount time", ctime(sb.s_mtime))?;
    line(&mut o, "Last write time", ctime(sb.s_wtime))?;
    line(&mut o, "Mount count", sb.s_mnt_count.to_string())?;
    line(
        &mut o,
        "Maximum mount count",
        sb.s_max_mnt_count.to_string(),
    )?;
    line(&mut o, "First inode", sb.s_first_ino.to_string())?;
    line(&mut o, "Inode size", sb.s_inode_size.to_string())?;
    if sb.has_journal() {
        line(&mut o, "Journal inode", sb.s_journal_inum.to_string())?;
    }
    let recovery = if fs.needs_recovery() { "yes" } else { "no" };
    line(&mut o, "Needs recovery", recovery.into())?;
    if let Some(r) = fs.replay_report() {
        line(
            &mut o,
            "Journal replayed",
            format!(
                "{} transaction(s) from sequence {}, {} block(s) (in memory only; {} revoked, {} bad checksum)",
                r.transactions, r.first_sequence, r.blocks, r.revoked, r.bad_checksums
            ),
        )?;
    }
    let st = fs.statfs();
    let bs = u64::from(st.block_size);
    line(
        &mut o,
        "Free space",
        format!(
            "{} bytes ({} bytes available to users)",
            st.free_blocks.saturating_mul(bs),
            st.available_blocks.saturating_mul(bs)
        ),
    )?;
    o.flush()?;
    Ok(())
}

fn long_line<D: BlockDevice>(
    fs: &Ext3<D>,
    m: &Metadata,
    name: &[u8],
    o: &mut impl Write,
) -> anyhow::Result<()> {
    let size = match m.file_type {
        FileType::CharDevice | FileType::BlockDevice => format!("{}, {}", m.rdev.0, m.rdev.1),
        _ => m.size.to_string(),
    };
    write!(
        o,
        "{} {:>3} {:>5} {:>5} {:>10} {} ",
        mode_string(m),
        m.nlink,
        m.uid,
        m.gid,
        size,
        short_time(m.mtime)
    )?;
    o.write_all(name)?;
    if m.file_type == FileType::Symlink {
        o.write_all(b" -> ")?;
        o.write_all(&fs.readlink(m.ino)?)?;
    }
    o.write_all(b"\n")?;
    Ok(())
}

/// Lists `path` (a directory's entries, or the file itself).
pub fn ls<D: BlockDevice>(
    fs: &Ext3<D>,
    path: &[u8],
    long: bool,
    recursive: bool,
) -> anyhow::Result<()> {
    // Like ls: `ls -l LINK` shows the link itself, `ls LINK` follows it.
    let ino = fs
        .resolve(path, !long)
        .with_context(|| format!("cannot access {}", shown(path)))?;
    let m = fs.getattr(ino)?;
    let (ino, m) = if long && m.file_type == FileType::Symlink && path.ends_with(b"/") {
        let ino = fs.resolve(path, true)?;
        (ino, fs.getattr(ino)?)
    } else {
        (ino, m)
    };
    let mut o = BufWriter::new(std::io::stdout().lock());
    if m.file_type != FileType::Directory {
        if long {
            long_line(fs, &m, path, &mut o)?;
        } else {
            o.write_all(path)?;
            o.write_all(b"\n")?;
        }
        o.flush()?;
        return Ok(());
    }
    let list_one = |o: &mut BufWriter<_>, ino: u32| -> anyhow::Result<Vec<(Vec<u8>, u32)>> {
        let mut entries = fs.read_dir(ino)?;
        entries.retain(|e| e.name != b"." && e.name != b"..");
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut subdirs = Vec::new();
        for e in &entries {
            let m = fs.getattr(e.ino)?;
            if long {
                long_line(fs, &m, &e.name, o)?;
            } else {
                o.write_all(&e.name)?;
                o.write_all(b"\n")?;
            }
            if m.file_type == FileType::Directory {
                subdirs.push((e.name.clone(), e.ino));
            }
        }
        Ok(subdirs)
    };
    if !recursive {
        list_one(&mut o, ino)?;
    } else {
        // Like ls -R: each directory's header, its entries, a blank line.
        let mut todo = vec![(path.to_vec(), ino)];
        let mut seen = std::collections::HashSet::new();
        let mut first = true;
        while let Some((p, d)) = todo.pop() {
            if !seen.insert(d) {
                anyhow::bail!(
                    "{}: directory loop (inode {d} is reachable twice)",
                    shown(&p)
                );
            }
            if !first {
                o.write_all(b"\n")?;
            }
            first = false;
            o.write_all(&p)?;
            o.write_all(b":\n")?;
            let subs = list_one(&mut o, d)?;
            for (name, ino) in subs.into_iter().rev() {
                todo.push((join(&p, &name), ino));
            }
        }
    }
    o.flush()?;
    Ok(())
}

/// Writes the contents of `paths` to standard output.
pub fn cat<D: BlockDevice>(fs: &Ext3<D>, paths: &[OsString]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // One block mapper per file (for_each_data), runs read straight into a
    // buffer that stays in the CPU cache; holes are written as zeros.
    let mut buf = vec![0u8; CAT_BUFFER];
    let zeros = vec![0u8; CAT_BUFFER];
    for p in paths {
        let path = p.as_encoded_bytes();
        let ino = fs.resolve(path, true).with_context(|| shown(path))?;
        let inode = fs.inode(ino)?;
        if inode.file_type() == Some(FileType::Directory) {
            anyhow::bail!("{}: is a directory", shown(path));
        }
        let mut pos = 0u64;
        let mut io_err = None;
        let zero_fill =
            |out: &mut std::io::StdoutLock, to: u64, pos: &mut u64| -> std::io::Result<()> {
                while *pos < to {
                    let n = (to - *pos).min(zeros.len() as u64) as usize;
                    out.write_all(&zeros[..n])?;
                    *pos += n as u64;
                }
                Ok(())
            };
        fs.for_each_data(ino, &inode, &mut buf, |off, data| {
            let r = zero_fill(&mut out, off, &mut pos).and_then(|()| out.write_all(data));
            pos = off + data.len() as u64;
            r.map_err(|e| {
                io_err = Some(e);
                crate::ext3::Error::stopped()
            })
        })
        .map_err(|e| match io_err.take() {
            Some(io) => anyhow::Error::from(io),
            None => anyhow::Error::from(e).context(shown(path)),
        })?;
        zero_fill(&mut out, inode.i_size, &mut pos)?;
    }
    out.flush()?;
    Ok(())
}

/// `cat`'s read size: large enough for few system calls, small enough to
/// stay in the CPU cache between the read and the write.
const CAT_BUFFER: usize = 1 << 20;

/// Prints the metadata of `path` (not following a final symlink).
pub fn stat<D: BlockDevice>(fs: &Ext3<D>, path: &[u8]) -> anyhow::Result<()> {
    let ino = fs
        .resolve(path, false)
        .with_context(|| format!("cannot stat {}", shown(path)))?;
    let m = fs.getattr(ino)?;
    let mut o = BufWriter::new(std::io::stdout().lock());
    writeln!(o, "  File: {}", shown(path))?;
    writeln!(o, "  Type: {}", type_name(m.file_type))?;
    writeln!(o, " Inode: {}", m.ino)?;
    writeln!(o, " Links: {}", m.nlink)?;
    writeln!(o, "  Mode: {:04o} ({})", m.perm, mode_string(&m))?;
    writeln!(o, "   Uid: {}", m.uid)?;
    writeln!(o, "   Gid: {}", m.gid)?;
    writeln!(o, "  Size: {}", m.size)?;
    writeln!(o, "Blocks: {}", m.blocks)?;
    if matches!(m.file_type, FileType::CharDevice | FileType::BlockDevice) {
        writeln!(o, "Device: {},{}", m.rdev.0, m.rdev.1)?;
    }
    if m.file_type == FileType::Symlink {
        writeln!(o, "  Link: {}", shown(&fs.readlink(ino)?))?;
    }
    writeln!(o, "Access: {}", full_time(m.atime))?;
    writeln!(o, "Modify: {}", full_time(m.mtime))?;
    writeln!(o, "Change: {}", full_time(m.ctime))?;
    if let Some(c) = m.crtime {
        writeln!(o, " Birth: {}", full_time(c))?;
    }
    writeln!(o, " Flags: {:#x}", m.flags)?;
    writeln!(o, "Generation: {}", m.generation)?;
    let inode = fs.inode(ino)?;
    for x in fs.xattrs_of(ino, &inode)? {
        if x.name == b"system.data" {
            continue;
        }
        writeln!(o, " Xattr: {} ({} bytes)", shown(&x.name), x.value.len())?;
    }
    o.flush()?;
    Ok(())
}
