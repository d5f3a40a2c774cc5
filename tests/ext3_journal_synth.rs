//! Journal replay on hand-written journals, with `e2fsck -fy` as the
//! referee: escaped blocks, revoke records, an uncommitted transaction, a
//! log that wraps around, 32- and 64-bit tags, and checksum v3 (computed
//! here, verified by e2fsck and by umlkit). umlkit's replayed blocks must
//! equal what e2fsck writes.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use umlkit::block::{BlockDevice, FileDevice};
use umlkit::ext3::journal::crc::crc32c;
use umlkit::ext3::map::collect_blocks;
use umlkit::ext3::Ext3;

const MAGIC: u32 = 0xC03B_3998;
const BS: usize = 1024;

struct Journal {
    /// Device block of each journal block.
    map: Vec<u64>,
    csum: bool,
    is64: bool,
    seed: u32,
    blocks: Vec<(u32, Vec<u8>)>,
    pos: u32,
    first: u32,
    end: u32,
}

impl Journal {
    fn header(&self, kind: u32, seq: u32) -> Vec<u8> {
        let mut b = vec![0u8; BS];
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&kind.to_be_bytes());
        b[8..12].copy_from_slice(&seq.to_be_bytes());
        b
    }

    fn push(&mut self, b: Vec<u8>) {
        self.blocks.push((self.pos, b));
        self.pos += 1;
        if self.pos >= self.end {
            self.pos = self.first;
        }
    }

    fn tail(&self, b: &mut [u8]) {
        if self.csum {
            b[BS - 4..].fill(0);
            let c = crc32c(self.seed, b);
            b[BS - 4..].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// A descriptor for `(fs block, data)` pairs and the data blocks.
    fn descriptor(&mut self, seq: u32, items: &[(u64, Vec<u8>)]) {
        let mut d = self.header(1, seq);
        let mut off = 12;
        let mut datas = Vec::new();
        for (i, (blk, data)) in items.iter().enumerate() {
            let mut data = data.clone();
            let mut flags = 0u32;
            if data[0..4] == MAGIC.to_be_bytes() {
                flags |= 1; // escaped
                data[0..4].fill(0);
            }
            if i > 0 {
                flags |= 2; // same UUID
            }
            if i + 1 == items.len() {
                flags |= 8; // last tag
            }
            let lo = (*blk as u32).to_be_bytes();
            let hi = ((*blk >> 32) as u32).to_be_bytes();
            if self.csum {
                // journal_block_tag3_t
                // Over the block as logged (escaped), as jbd2 computes it.
                let c = crc32c(crc32c(self.seed, &seq.to_be_bytes()), &data);
                d[off..off + 4].copy_from_slice(&lo);
                d[off + 4..off + 8].copy_from_slice(&flags.to_be_bytes());
                d[off + 8..off + 12].copy_from_slice(&hi);
                d[off + 12..off + 16].copy_from_slice(&c.to_be_bytes());
                off += 16;
            } else {
                d[off..off + 4].copy_from_slice(&lo);
                d[off + 6..off + 8].copy_from_slice(&(flags as u16).to_be_bytes());
                off += 8;
                if self.is64 {
                    d[off..off + 4].copy_from_slice(&hi);
                    off += 4;
                }
            }
            if flags & 2 == 0 {
                off += 16;
            }
            datas.push(data);
        }
        self.tail(&mut d);
        self.push(d);
        for data in datas {
            self.push(data);
        }
    }

    fn revoke(&mut self, seq: u32, blocks: &[u64]) {
        let mut r = self.header(5, seq);
        let size = if self.is64 { 8 } else { 4 };
        let mut off = 16;
        for &b in blocks {
            if self.is64 {
                r[off..off + 8].copy_from_slice(&b.to_be_bytes());
            } else {
                r[off..off + 4].copy_from_slice(&(b as u32).to_be_bytes());
            }
            off += size;
        }
        r[12..16].copy_from_slice(&(off as u32).to_be_bytes());
        self.tail(&mut r);
        self.push(r);
    }

    fn commit(&mut self, seq: u32) {
        let mut c = self.header(2, seq);
        if self.csum {
            let v = crc32c(self.seed, &c);
            c[16..20].copy_from_slice(&v.to_be_bytes());
        }
        self.push(c);
    }
}

fn read_block(path: &Path, blk: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, blk * BS as u64)
        .unwrap();
    b
}

fn case(test: &str, csum: bool, is64: bool, start_near_end: bool, damage_rounds: usize) {
    if !common::have_peers(test, &["mke2fs", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image");
    common::run_ok(
        common::which("mke2fs").unwrap(),
        [
            "-q",
            "-F",
            "-t",
            "ext3",
            "-b",
            "1024",
            "-J",
            "size=1",
            img.to_str().unwrap(),
            "16M",
        ],
    );
    let (map, jsb_raw) = {
        let fs = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
        let inode = fs.inode(8).unwrap();
        let n = inode.i_size / BS as u64;
        let mut m = umlkit::ext3::map::Mapper::new(
            fs.device(),
            1024,
            fs.superblock().s_blocks_count,
            8,
            &inode,
        );
        let map = collect_blocks(&mut m, n).unwrap();
        let jsb = read_block(&img, map[0]);
        (map, jsb)
    };
    let maxlen = u32::from_be_bytes(jsb_raw[0x10..0x14].try_into().unwrap());
    let first = u32::from_be_bytes(jsb_raw[0x14..0x18].try_into().unwrap());
    let uuid: [u8; 16] = jsb_raw[0x30..0x40].try_into().unwrap();
    let start = if start_near_end { maxlen - 3 } else { first };
    let mut j = Journal {
        map,
        csum,
        is64,
        seed: crc32c(!0, &uuid),
        blocks: Vec::new(),
        pos: start,
        first,
        end: maxlen,
    };

    let data = |seed: u64| common::pattern(seed, BS);
    let mut escaped = data(1);
    escaped[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    let (a, b, c, d, e) = (9000u64, 9001, 9002, 9003, 9004);
    // 10: A (escaped), B, E.  11: revoke B, C, and E again.  12: D, no commit.
    j.descriptor(10, &[(a, escaped.clone()), (b, data(2)), (e, data(5))]);
    j.commit(10);
    j.revoke(11, &[b]);
    j.descriptor(11, &[(c, data(3)), (e, data(6))]);
    j.commit(11);
    j.descriptor(12, &[(d, data(4))]);

    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    for (pos, block) in &j.blocks {
        f.write_all_at(block, j.map[*pos as usize] * BS as u64)
            .unwrap();
    }
    // The journal superblock: log start, sequence, features, checksum.
    let mut jsb = jsb_raw.clone();
    jsb[0x18..0x1C].copy_from_slice(&10u32.to_be_bytes());
    jsb[0x1C..0x20].copy_from_slice(&start.to_be_bytes());
    let incompat: u32 = 1 | if is64 { 2 } else { 0 } | if csum { 0x10 } else { 0 };
    jsb[0x28..0x2C].copy_from_slice(&incompat.to_be_bytes());
    if csum {
        jsb[0x50] = 4; // JBD2_CRC32C_CHKSUM
        jsb[0xFC..0x100].fill(0);
        let c = crc32c(!0, &jsb[..1024]);
        jsb[0xFC..0x100].copy_from_slice(&c.to_be_bytes());
    }
    f.write_all_at(&jsb, j.map[0] * BS as u64).unwrap();
    // The filesystem needs recovery.
    let mut sbw = [0u8; 4];
    std::fs::File::open(&img)
        .unwrap()
        .read_exact_at(&mut sbw, 1024 + 0x60)
        .unwrap();
    let v = u32::from_le_bytes(sbw) | 4;
    f.write_all_at(&v.to_le_bytes(), 1024 + 0x60).unwrap();
    drop(f);
    if damage_rounds > 0 {
        damage(&img, &j, damage_rounds);
        return;
    }
    let before: Vec<Vec<u8>> = [a, b, c, d, e]
        .iter()
        .map(|&x| read_block(&img, x))
        .collect();

    let fs = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
    let report = fs.replay_report().unwrap().clone();
    let ours: Vec<Vec<u8>> = [a, b, c, d, e]
        .iter()
        .map(|&x| {
            let mut buf = vec![0u8; BS];
            fs.device().read_exact_at(x * BS as u64, &mut buf).unwrap();
            buf
        })
        .collect();
    assert_eq!(report.transactions, 2, "{report:?}");
    assert_eq!(report.revoked, 1, "{report:?}");
    assert_eq!(report.bad_checksums, 0, "{report:?}");
    assert!(ours[0] == escaped, "escaped block not restored");
    assert!(ours[1] == before[1], "revoked block replayed");
    assert!(ours[2] == data(3));
    assert!(ours[3] == before[3], "uncommitted transaction replayed");
    assert!(ours[4] == data(6), "the later copy must win");

    // e2fsck agrees block for block.
    let copy = dir.path().join("copy");
    std::fs::copy(&img, &copy).unwrap();
    let r = common::run(
        common::which("e2fsck").unwrap(),
        ["-fy", copy.to_str().unwrap()],
    );
    assert!(
        r.status.code().unwrap_or(99) <= 1,
        "{}{}",
        common::stdout(&r),
        common::stderr(&r)
    );
    for (i, &x) in [a, b, c, d, e].iter().enumerate() {
        assert!(
            read_block(&copy, x) == ours[i],
            "block {x} differs from e2fsck's replay"
        );
    }
    // A corrupted commit block ends the log there (checksummed journals):
    // transaction 11 is then not replayed, as e2fsck also decides.
    if csum {
        let commit11 = j
            .blocks
            .iter()
            .filter(|(_, b)| b[4..8] == 2u32.to_be_bytes())
            .nth(1)
            .unwrap()
            .0;
        let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.write_all_at(&[0xFF], j.map[commit11 as usize] * BS as u64 + 40)
            .unwrap();
        drop(f);
        let fs = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
        assert_eq!(fs.replay_report().unwrap().transactions, 1);
        let copy2 = dir.path().join("copy2");
        std::fs::copy(&img, &copy2).unwrap();
        common::run(
            common::which("e2fsck").unwrap(),
            ["-fy", copy2.to_str().unwrap()],
        );
        for &x in &[a, b, c, d, e] {
            let mut buf = vec![0u8; BS];
            fs.device().read_exact_at(x * BS as u64, &mut buf).unwrap();
            assert!(
                read_block(&copy2, x) == buf,
                "block {x} differs from e2fsck after a bad commit"
            );
        }
    }
}

#[test]
fn synthetic_journal_with_escape_revoke_and_uncommitted_transaction_replays_like_e2fsck() {
    case("journal_synth_plain", false, false, false, 0);
}

#[test]
fn synthetic_journal_that_wraps_around_with_64bit_tags_replays_like_e2fsck() {
    case("journal_synth_wrap64", false, true, true, 0);
}

#[test]
fn synthetic_checksum_v3_journal_replays_like_e2fsck_and_stops_at_a_bad_commit() {
    case("journal_synth_csum3", true, true, true, 0);
}

/// Random bytes of the log changed, `rounds` times: opening (with replay)
/// and reading must end in data or an error, never a panic or a hang.
fn damage(img: &Path, j: &Journal, rounds: usize) {
    let clean = std::fs::read(img).unwrap();
    let mut rng = common::fsimg::Rng::new(4242);
    let log: Vec<u64> = j
        .blocks
        .iter()
        .map(|(pos, _)| j.map[*pos as usize])
        .chain([j.map[0]])
        .collect();
    let start = std::time::Instant::now();
    let mut opened = 0;
    for _ in 0..rounds {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.below(8) {
            let blk = log[rng.below(log.len() as u64) as usize] as usize;
            let at = blk * BS + rng.below(BS as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        if let Ok(fs) = Ext3::open(umlkit::block::MemDevice::new(bytes)) {
            opened += 1;
            let mut buf = vec![0u8; BS];
            let _ = fs.walk(umlkit::ext3::ROOT_INO, b"/", |n| {
                let _ = fs.read(n.meta.ino, 0, &mut buf);
                Ok(true)
            });
        }
    }
    assert!(opened > 0, "no damaged journal could be opened at all");
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn damaged_journals_never_panic_or_hang_the_reader() {
    case("journal_synth_damage", false, false, true, 300);
    case("journal_synth_damage_csum", true, true, true, 300);
}
