//! `uml_fs diff`: prints what a COW changed (the comparison is
//! [`crate::ext3::compare`]) as `KIND PATH` lines or JSON.

use crate::block::BlockDevice;
use crate::ext3::compare::{diff_trees_with, Unchanged};
use crate::ext3::Ext3;
use std::io::{BufWriter, Write};

/// Prints the changes as text (`KIND PATH` per line) or JSON.
pub fn print<A: BlockDevice, B: BlockDevice>(
    old: &Ext3<A>,
    new: &Ext3<B>,
    unchanged: Unchanged<'_>,
    json: bool,
) -> anyhow::Result<()> {
    let changes = diff_trees_with(old, new, unchanged)?;
    let mut o = BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut o, &changes)?;
        o.write_all(b"\n")?;
    } else {
        for c in &changes {
            writeln!(o, "{:<8} {}", c.change.word(), c.path)?;
        }
    }
    o.flush()?;
    Ok(())
}
