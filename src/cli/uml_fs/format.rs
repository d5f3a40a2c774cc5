//! Text formatting shared by the subcommands: times (UTC), modes, sizes.

use crate::ext3::{FileType, Metadata, Timestamp};

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split(sec: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = sec.div_euclid(86_400);
    let s = sec.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    (y, m, d, s / 3600, (s / 60) % 60, s % 60)
}

/// `2026-11-25 07:27:25.123456789 +0000`.
pub fn full_time(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s) = split(t.sec);
    format!(
        "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{:09} +0000",
        t.nsec
    )
}

/// `2026-11-25 07:27`, for `ls -l`.
pub fn short_time(t: Timestamp) -> String {
    let (y, mo, d, h, mi, _) = split(t.sec);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
}

/// `Wed Nov 25 07:27:25 2026` (as `dumpe2fs` prints, in UTC); `n/a` for 0.
pub fn ctime(sec: u32) -> String {
    if sec == 0 {
        return "n/a".into();
    }
    let sec = i64::from(sec);
    let (y, mo, d, h, mi, s) = split(sec);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = DAYS[sec.div_euclid(86_400).rem_euclid(7) as usize];
    let mn = MONTHS[(mo as usize).saturating_sub(1).min(11)];
    format!("{wd} {mn} {d:2} {h:02}:{mi:02}:{s:02} {y}")
}

/// `-rwsr-xr-x`.
pub fn mode_string(m: &Metadata) -> String {
    let p = m.perm;
    let mut s = String::with_capacity(10);
    s.push(m.file_type.letter());
    let bit = |mask: u16, c: char| if p & mask != 0 { c } else { '-' };
    let exec = |x: u16, special: u16, on: char, off: char| match (p & x != 0, p & special != 0) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(exec(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(exec(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(exec(0o001, 0o1000, 't', 'T'));
    s
}

/// The type's name, as `stat` prints it.
pub fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::CharDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
    }
}

/// The letter `find -type` uses.
pub fn type_letter(t: FileType) -> char {
    match t {
        FileType::Regular => 'f',
        other => other.letter(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_like_dumpe2fs_and_stat() {
        assert_eq!(ctime(1_795_591_645), "Wed Nov 25 07:27:25 2026");
        assert_eq!(
            full_time(Timestamp { sec: 0, nsec: 5 }),
            "1970-01-01 00:00:00.000000005 +0000"
        );
        assert_eq!(
            short_time(Timestamp {
                sec: 951_782_400,
                nsec: 0
            }),
            "2000-02-29 00:00"
        );
        assert_eq!(ctime(0), "n/a");
    }
}
