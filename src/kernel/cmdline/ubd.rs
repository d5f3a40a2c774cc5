//! The `ubd<unit>[flags]=<file>[,<backing>][,<serial>]` option, parsed the
//! way Linux 6.1's `ubd_setup_common` does (spec kernel-cmdline.md §2.1,
//! §2.2): unit by number (base auto-detected) or letter, up to six flag
//! letters, then the files split at `,` or `:`. Pure.

use super::num::parse_ulong;

/// Number of ubd devices (`ubd0`..`ubd15`, `ubda`..`ubdp`).
pub const MAX_DEV: usize = 16;

/// One configured ubd device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UbdConfig {
    /// The first file: a plain image or a COW file.
    pub file: String,
    /// The backing file, when given.
    pub backing: Option<String>,
    /// The serial number, when given.
    pub serial: Option<String>,
    /// `r`: read-only.
    pub read_only: bool,
    /// `s`: synchronous host writes.
    pub sync: bool,
    /// `d`: a plain image; do not look for a COW header.
    pub no_cow: bool,
    /// `c`: shared, no host locking.
    pub shared: bool,
    /// `t`: no trim.
    pub no_trim: bool,
}

impl UbdConfig {
    /// The device string `src/cow` opens: `FILE[,BACKING]`.
    pub fn spec(&self) -> String {
        match &self.backing {
            Some(b) => format!("{},{}", self.file, b),
            None => self.file.clone(),
        }
    }
}

/// What a `ubd...` word asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UbdOption {
    /// `ubd=sync`: every device synchronous.
    SyncAll,
    /// `ubd=<other>`: the kernel only prints a notice.
    FakeMajor,
    /// A device.
    Device(usize, UbdConfig),
}

/// Why a `ubd` word was refused; the text is the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to initialize device with \"{text}\" : {reason}")]
pub struct UbdError {
    /// The word after `ubd`, as the kernel quotes it.
    pub text: String,
    /// The kernel's reason.
    pub reason: &'static str,
}

/// The device letter of a unit: 0 = `a`.
pub fn letter(unit: usize) -> char {
    char::from(b'a' + u8::try_from(unit % 26).unwrap_or(0))
}

/// Parses the text after `ubd`. `configured` says which units are already
/// taken by earlier words.
pub fn parse(after_ubd: &str, configured: &[bool; MAX_DEV]) -> Result<UbdOption, UbdError> {
    let err = |text: &str, reason| UbdError {
        text: text.to_string(),
        reason,
    };
    if let Some(rest) = after_ubd.strip_prefix('=') {
        return Ok(if rest == "sync" {
            UbdOption::SyncAll
        } else {
            UbdOption::FakeMajor
        });
    }
    let bytes = after_ubd.as_bytes();
    let (unit, mut pos) = match bytes.first() {
        Some(c) if c.is_ascii_digit() => match parse_ulong(after_ubd) {
            Some((n, used)) => (usize::try_from(n).unwrap_or(usize::MAX), used),
            None => return Err(err(after_ubd, "Couldn't parse device number")),
        },
        Some(c) if c.is_ascii_lowercase() => (usize::from(c - b'a'), 1),
        _ => return Err(err(after_ubd, "Couldn't parse device number")),
    };
    if unit >= MAX_DEV {
        return Err(err(after_ubd, "Device number out of range"));
    }
    if configured[unit] {
        return Err(err(after_ubd, "Device is already configured"));
    }
    let mut cfg = UbdConfig::default();
    // sizeof("rscdt=") iterations: six flags and the '='.
    let mut found_eq = false;
    for _ in 0..7 {
        match bytes.get(pos) {
            Some(b'r') => cfg.read_only = true,
            Some(b's') => cfg.sync = true,
            Some(b'd') => cfg.no_cow = true,
            Some(b'c') => cfg.shared = true,
            Some(b't') => cfg.no_trim = true,
            Some(b'=') => {
                pos += 1;
                found_eq = true;
                break;
            }
            _ => {
                return Err(err(
                    after_ubd,
                    "Expected '=' or flag letter (r, s, c, t or d)",
                ))
            }
        }
        pos += 1;
    }
    if !found_eq {
        let reason = if bytes.get(pos) == Some(&b'=') {
            "Too many flags specified"
        } else {
            "Missing '='"
        };
        return Err(err(after_ubd, reason));
    }
    let value = &after_ubd[pos..];
    let mut fields = value.splitn(3, [',', ':']);
    let file = fields.next().unwrap_or_default();
    let backing = fields.next().filter(|s| !s.is_empty());
    let serial = fields.next().filter(|s| !s.is_empty());
    if backing.is_some() && cfg.no_cow {
        // The kernel's strsep has cut the string at the first separator,
        // so its message quotes only up to there.
        let cut = pos + file.len();
        return Err(err(
            &after_ubd[..cut],
            "Can't specify both 'd' and a cow file",
        ));
    }
    if file.is_empty() {
        // No file: the device stays unconfigured (a serial alone is legal
        // in the kernel but gives a disk with no file; we refuse it).
        return Err(err(after_ubd, "No file name given"));
    }
    cfg.file = file.to_string();
    cfg.backing = backing.map(str::to_string);
    cfg.serial = serial.map(str::to_string);
    Ok(UbdOption::Device(unit, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(s: &str) -> (usize, UbdConfig) {
        match parse(s, &[false; MAX_DEV]).unwrap() {
            UbdOption::Device(n, c) => (n, c),
            other => panic!("{other:?}"),
        }
    }

    fn reason(s: &str) -> String {
        parse(s, &[false; MAX_DEV]).unwrap_err().to_string()
    }

    #[test]
    fn units_are_numbers_or_letters_and_flags_follow_the_unit() {
        assert_eq!(dev("0=a.cow,root_fs").0, 0);
        assert_eq!(dev("c=disk").0, 2, "ubdc= is unit 2, not the c flag");
        let (n, c) = dev("br=disk");
        assert_eq!(n, 1);
        assert!(c.read_only);
        assert_eq!(dev("0x3=disk").0, 3);
        let (_, c) = dev("0rsct=a.cow:root_fs:SER");
        assert!(c.read_only && c.sync && c.shared && c.no_trim);
        assert_eq!(c.backing.as_deref(), Some("root_fs"));
        assert_eq!(c.serial.as_deref(), Some("SER"));
        let (_, c) = dev("1=FILE,,SERIAL");
        assert_eq!(c.backing, None);
        assert_eq!(c.serial.as_deref(), Some("SERIAL"));
    }

    #[test]
    fn errors_are_the_kernels_messages() {
        assert_eq!(
            reason("4x=foo"),
            "Failed to initialize device with \"4x=foo\" : Expected '=' or flag letter (r, s, c, t or d)"
        );
        assert_eq!(
            reason("5d=a.cow,root_fs"),
            "Failed to initialize device with \"5d=a.cow\" : Can't specify both 'd' and a cow file"
        );
        assert!(reason("16=disk").ends_with(": Device number out of range"));
        assert!(reason("z=disk").ends_with(": Device number out of range"));
        assert!(reason("0rrrrrrr=disk").ends_with(": Too many flags specified"));
        assert!(reason("0rrrrrrr").ends_with(": Missing '='"));
        assert!(reason("0r").ends_with("(r, s, c, t or d)"));
        assert!(reason("X=disk").ends_with(": Couldn't parse device number"));
        let mut taken = [false; MAX_DEV];
        taken[2] = true;
        assert!(parse("2=disk", &taken)
            .unwrap_err()
            .to_string()
            .ends_with(": Device is already configured"));
    }

    #[test]
    fn ubd_equals_is_sync_or_the_fake_major_notice() {
        assert_eq!(parse("=sync", &[false; MAX_DEV]), Ok(UbdOption::SyncAll));
        assert_eq!(parse("=98", &[false; MAX_DEV]), Ok(UbdOption::FakeMajor));
    }
}
