//! Console and serial-line channels: `con=`, `con<N>=`, `ssl=`, `ssl<N>=`
//! (spec kernel-cmdline.md §5), parsed as Linux 6.1's `line_setup` and
//! `parse_chan_pair` do. Pure: what a channel means at run time is the
//! monitor's business.

use super::num::parse_ulong;

/// Number of consoles (`tty0`..`tty15`).
pub const MAX_CONSOLES: usize = 16;
/// Number of serial lines (`ttyS0`..`ttyS63`).
pub const MAX_SERIALS: usize = 64;

/// One direction's channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `fd:N`: an inherited host descriptor.
    Fd(i32),
    /// `null`: output discarded, no input.
    Null,
    /// `port:N`: a TCP port.
    Port(u16),
    /// `pty`: a legacy BSD pty.
    Pty,
    /// `pts`: a Unix98 pty.
    Pts,
    /// `tty:DEV`: a host terminal device.
    Tty(String),
    /// `xterm`: a terminal emulator window.
    Xterm,
}

impl Channel {
    /// The channel's type name, as on the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Fd(_) => "fd",
            Channel::Null => "null",
            Channel::Port(_) => "port",
            Channel::Pty => "pty",
            Channel::Pts => "pts",
            Channel::Tty(_) => "tty",
            Channel::Xterm => "xterm",
        }
    }
}

/// A device's channels: `IN,OUT`, or one channel for both; `None` = the
/// device is removed (`none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPair {
    /// Where input comes from.
    pub input: Channel,
    /// Where output goes.
    pub output: Channel,
}

/// Why a channel string was refused. The texts are the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChanError {
    /// `con99=`, `conX=`.
    #[error("Failed to set up {what} with configuration string \"{text}\" : {reason}")]
    Setup {
        /// `console` or `serial line`.
        what: &'static str,
        /// The text after `con`/`ssl`.
        text: String,
        /// The kernel's reason.
        reason: &'static str,
    },
    /// A channel the parser does not know, or a malformed one.
    #[error("setup_one_line failed for device {device} : failed to parse channel pair ({detail})")]
    Pair {
        /// The device number.
        device: usize,
        /// The channel init's own message.
        detail: ChannelError,
    },
}

/// Why one channel (`fd:N`, `port:N`, `tty:DEV`, ...) was refused: the
/// message of the kernel's channel init.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// `fd` without `:N`.
    #[error("fd_init : channel type 'fd' must specify a file descriptor")]
    FdMissing,
    /// `fd:` followed by no valid descriptor number.
    #[error("fd_init : couldn't parse file descriptor '{0}'")]
    BadFd(String),
    /// `port` without `:N`.
    #[error("port_init : channel type 'port' must specify a port number")]
    PortMissing,
    /// `port:` followed by no valid port.
    #[error("port_init : couldn't parse port '{0}'")]
    BadPort(String),
    /// `tty` without `:DEVICE`.
    #[error("tty_init : channel type 'tty' must specify a device")]
    TtyMissing,
    /// No channel type matches.
    #[error("parse_chan couldn't parse \"{0}\"")]
    Unknown(String),
}

/// What a `con`/`ssl` word configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineSetting {
    /// `con=X`: the default of every device.
    All(String),
    /// `con<N>=X`: one device.
    One(usize, String),
}

/// Parses the text after `con`/`ssl` as `line_setup` does (the channel
/// string itself is parsed later, per device, by [`parse_pair`]).
pub fn line_setup(after: &str, max: usize, what: &'static str) -> Result<LineSetting, ChanError> {
    let err = |reason| ChanError::Setup {
        what,
        text: after.to_string(),
        reason,
    };
    if let Some(rest) = after.strip_prefix('=') {
        return Ok(LineSetting::All(rest.to_string()));
    }
    let (n, used) = parse_ulong(after).unwrap_or((0, 0));
    if after.as_bytes().get(used) != Some(&b'=') || used == 0 {
        return Err(err("Couldn't parse device number"));
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n >= max {
        return Err(err("Device number out of range"));
    }
    Ok(LineSetting::One(n, after[used + 1..].to_string()))
}

fn parse_chan(s: &str) -> Result<Channel, ChannelError> {
    // Prefix match in the kernel's table order.
    if let Some(rest) = s.strip_prefix("fd") {
        let Some(num) = rest.strip_prefix(':') else {
            return Err(ChannelError::FdMissing);
        };
        return match parse_ulong(num) {
            Some((n, used)) if used == num.len() => i32::try_from(n)
                .map(Channel::Fd)
                .map_err(|_| ChannelError::BadFd(num.to_string())),
            _ => Err(ChannelError::BadFd(num.to_string())),
        };
    }
    if s.starts_with("null") {
        return Ok(Channel::Null);
    }
    if let Some(rest) = s.strip_prefix("port") {
        let Some(num) = rest.strip_prefix(':') else {
            return Err(ChannelError::PortMissing);
        };
        return match parse_ulong(num) {
            Some((n, used)) if used == num.len() => u16::try_from(n)
                .map(Channel::Port)
                .map_err(|_| ChannelError::BadPort(num.to_string())),
            _ => Err(ChannelError::BadPort(num.to_string())),
        };
    }
    if s.starts_with("pty") {
        return Ok(Channel::Pty);
    }
    if s.starts_with("pts") {
        return Ok(Channel::Pts);
    }
    if let Some(rest) = s.strip_prefix("tty") {
        return match rest.strip_prefix(':') {
            Some(dev) if !dev.is_empty() => Ok(Channel::Tty(dev.to_string())),
            _ => Err(ChannelError::TtyMissing),
        };
    }
    if s.starts_with("xterm") {
        return Ok(Channel::Xterm);
    }
    Err(ChannelError::Unknown(s.to_string()))
}

/// Parses a channel string for device `device`: `none` (no device), one
/// channel, or `IN,OUT` split at the first comma.
pub fn parse_pair(device: usize, s: &str) -> Result<Option<ChannelPair>, ChanError> {
    if s == "none" {
        return Ok(None);
    }
    let pair_err = |detail| ChanError::Pair { device, detail };
    let (input, output) = match s.split_once(',') {
        Some((i, o)) => (
            parse_chan(i).map_err(pair_err)?,
            parse_chan(o).map_err(pair_err)?,
        ),
        None => {
            let c = parse_chan(s).map_err(pair_err)?;
            (c.clone(), c)
        }
    };
    Ok(Some(ChannelPair { input, output }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_setup_takes_all_or_one_device() {
        assert_eq!(
            line_setup("=null", MAX_CONSOLES, "console"),
            Ok(LineSetting::All("null".into()))
        );
        assert_eq!(
            line_setup("0=fd:0,fd:1", MAX_CONSOLES, "console"),
            Ok(LineSetting::One(0, "fd:0,fd:1".into()))
        );
        assert_eq!(
            line_setup("99=null", MAX_CONSOLES, "console").unwrap_err().to_string(),
            "Failed to set up console with configuration string \"99=null\" : Device number out of range"
        );
        assert_eq!(
            line_setup("X=null", MAX_SERIALS, "serial line").unwrap_err().to_string(),
            "Failed to set up serial line with configuration string \"X=null\" : Couldn't parse device number"
        );
    }

    #[test]
    fn channel_pairs_split_at_the_first_comma() {
        let p = parse_pair(0, "fd:0,fd:1").unwrap().unwrap();
        assert_eq!((p.input, p.output), (Channel::Fd(0), Channel::Fd(1)));
        let p = parse_pair(1, "pts").unwrap().unwrap();
        assert_eq!((p.input, p.output), (Channel::Pts, Channel::Pts));
        assert_eq!(parse_pair(2, "none"), Ok(None));
        assert_eq!(
            parse_pair(0, "port:9000").unwrap().unwrap().input,
            Channel::Port(9000)
        );
        assert_eq!(
            parse_pair(0, "tty:/dev/ttyS0").unwrap().unwrap().input,
            Channel::Tty("/dev/ttyS0".into())
        );
    }

    #[test]
    fn bad_channels_give_the_kernels_texts() {
        let e = |s| parse_pair(3, s).unwrap_err().to_string();
        assert!(e("x-terminal-emulator")
            .starts_with("setup_one_line failed for device 3 : failed to parse channel pair"));
        assert!(e("fd").contains("channel type 'fd' must specify a file descriptor"));
        assert!(e("fd:x").contains("couldn't parse file descriptor 'x'"));
        assert!(e("port:abc").contains("couldn't parse port 'abc'"));
        assert!(e("tty").contains("must specify a device"));
    }
}
