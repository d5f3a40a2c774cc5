//! The mconsole wire format: requests (client to guest), reply parts
//! (guest to client) and notifications (guest to a notify socket).
//!
//! Everything here is pure: encoders return bytes, decoders take one
//! datagram and return a validated value or a [`ProtocolError`]. Integers
//! are in host byte order, as the kernel's `struct mconsole_request`,
//! `struct mconsole_reply` and `struct mconsole_notify` (spec §2).
//!
//! ```text
//! request  (524 bytes): magic u32 | version u32 | len u32 | data[512] (NUL-terminated)
//! reply  (12+len bytes): err u32  | more u32    | len u32 | data[len] (len counts the NUL)
//! notify (16+len bytes): magic u32 | version u32 | type u32 | len u32 | data[len]
//! ```

use thiserror::Error;

/// `MCONSOLE_MAGIC`: first word of every request and notification.
pub const MCONSOLE_MAGIC: u32 = 0xcafe_babe;
/// `MCONSOLE_VERSION`: the only protocol version Linux 6.1 accepts.
pub const MCONSOLE_VERSION: u32 = 2;
/// `MCONSOLE_MAX_DATA`: size of the data array in every structure.
pub const MCONSOLE_MAX_DATA: usize = 512;
/// The longest command text a request carries (one byte is the NUL).
pub const MAX_COMMAND_LEN: usize = MCONSOLE_MAX_DATA - 1;
/// The longest text chunk in one reply datagram (one byte is the NUL).
pub const MAX_REPLY_CHUNK: usize = MCONSOLE_MAX_DATA - 1;
/// Size of an encoded request: the whole C structure is always sent.
pub const REQUEST_SIZE: usize = 12 + MCONSOLE_MAX_DATA;
/// Size of the reply header (`err`, `more`, `len`).
pub const REPLY_HEADER_SIZE: usize = 12;
/// The largest reply datagram (header plus a full data array).
pub const MAX_REPLY_SIZE: usize = REPLY_HEADER_SIZE + MCONSOLE_MAX_DATA;
/// Size of the notification header (`magic`, `version`, `type`, `len`).
pub const NOTIFY_HEADER_SIZE: usize = 16;
/// The largest notification datagram.
pub const MAX_NOTIFY_SIZE: usize = NOTIFY_HEADER_SIZE + MCONSOLE_MAX_DATA;
/// The raw text a 6.1 kernel sends back (no reply structure, no NUL) to a
/// request with a wrong magic (spec §2.1, "version 0" clients).
pub const VERSION0_REPLY: &[u8] =
    b"ERR Version 0 mconsole clients are not supported by this driver";

/// Why a datagram is not a valid mconsole structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The datagram is shorter than the structure's fixed header, or than
    /// the header's `len` says.
    #[error("{what} truncated: {got} bytes, need {need}")]
    Truncated {
        /// Which structure.
        what: &'static str,
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The datagram is longer than the structure can be.
    #[error("{what} too long: {got} bytes, at most {max}")]
    TooLong {
        /// Which structure.
        what: &'static str,
        /// Bytes received.
        got: usize,
        /// The maximum.
        max: usize,
    },
    /// The first word is not `MCONSOLE_MAGIC`.
    #[error("bad magic {0:#010x} (expected 0xcafebabe)")]
    BadMagic(u32),
    /// The `len` field is out of range for the data array.
    #[error("length field {len} out of range (at most {max})")]
    BadLength {
        /// The `len` field.
        len: u32,
        /// Its largest valid value.
        max: usize,
    },
    /// A text with no NUL within the 511 bytes it may have.
    #[error("{what} text is not NUL-terminated within {max} bytes")]
    Unterminated {
        /// Which structure.
        what: &'static str,
        /// The most text bytes it may carry.
        max: usize,
    },
    /// A protocol version this code does not speak.
    #[error("unsupported mconsole version {0} (only version 2)")]
    UnsupportedVersion(u32),
}

/// Checks that a `what` datagram is at least `min` and at most `max` bytes.
fn check_size(
    what: &'static str,
    datagram: &[u8],
    min: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    let got = datagram.len();
    if got < min {
        return Err(ProtocolError::Truncated {
            what,
            got,
            need: min,
        });
    }
    if got > max {
        return Err(ProtocolError::TooLong { what, got, max });
    }
    Ok(())
}

/// The data of a reply or notification: `len` (the word at `len_at`, at
/// most 512) bytes after a `header`-byte header, all inside the datagram.
fn payload<'a>(
    what: &'static str,
    datagram: &'a [u8],
    len_at: usize,
    header: usize,
) -> Result<&'a [u8], ProtocolError> {
    let len_field = word(datagram, len_at);
    let len = usize::try_from(len_field).unwrap_or(usize::MAX);
    if len > MCONSOLE_MAX_DATA {
        return Err(ProtocolError::BadLength {
            len: len_field,
            max: MCONSOLE_MAX_DATA,
        });
    }
    datagram
        .get(header..header + len)
        .ok_or(ProtocolError::Truncated {
            what,
            got: datagram.len(),
            need: header + len,
        })
}

fn word(bytes: &[u8], offset: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        w.copy_from_slice(src);
    }
    u32::from_ne_bytes(w)
}

/// The C-string content of `data`: the bytes before the first NUL.
fn c_text(data: &[u8]) -> &[u8] {
    match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    }
}

/// A command sent to the guest (`struct mconsole_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The `version` field; 2 for every client this crate makes.
    pub version: u32,
    /// The command text, without the NUL, at most [`MAX_COMMAND_LEN`] bytes.
    pub command: Vec<u8>,
}

impl Request {
    /// A version-2 request for `command`, truncated to [`MAX_COMMAND_LEN`]
    /// bytes as the original client does.
    pub fn new(command: &[u8]) -> Request {
        let len = command.len().min(MAX_COMMAND_LEN);
        Request {
            version: MCONSOLE_VERSION,
            command: command[..len].to_vec(),
        }
    }

    /// The full 524-byte structure, zero-padded.
    pub fn encode(&self) -> [u8; REQUEST_SIZE] {
        let mut out = [0u8; REQUEST_SIZE];
        let len = self.command.len().min(MAX_COMMAND_LEN);
        out[0..4].copy_from_slice(&MCONSOLE_MAGIC.to_ne_bytes());
        out[4..8].copy_from_slice(&self.version.to_ne_bytes());
        // `len` is at most 511, so it fits a u32.
        out[8..12].copy_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        out[12..12 + len].copy_from_slice(&self.command[..len]);
        out
    }

    /// Validates one request datagram as the 6.1 server does (spec §2.1):
    /// magic, then `len < 512`; the command is the text before the first
    /// NUL within `len`. The version is returned, not checked: the kernel
    /// answers a wrong version with an error and still runs the command.
    pub fn decode(datagram: &[u8]) -> Result<Request, ProtocolError> {
        const WHAT: &str = "request";
        check_size(WHAT, datagram, 12, REQUEST_SIZE)?;
        let magic = word(datagram, 0);
        if magic != MCONSOLE_MAGIC {
            return Err(ProtocolError::BadMagic(magic));
        }
        let version = word(datagram, 4);
        let len_field = word(datagram, 8);
        let len = usize::try_from(len_field).unwrap_or(usize::MAX);
        if len >= MCONSOLE_MAX_DATA {
            return Err(ProtocolError::BadLength {
                len: len_field,
                max: MAX_COMMAND_LEN,
            });
        }
        let data = datagram.get(12..12 + len).ok_or(ProtocolError::Truncated {
            what: WHAT,
            got: datagram.len(),
            need: 12 + len,
        })?;
        Ok(Request {
            version,
            command: c_text(data).to_vec(),
        })
    }
}

/// One reply datagram (`struct mconsole_reply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPart {
    /// The `err` field: 0 for success, else 1 or a negative errno.
    pub err: u32,
    /// The `more` field: another part follows.
    pub more: bool,
    /// The text chunk without its NUL, at most [`MAX_REPLY_CHUNK`] bytes.
    pub data: Vec<u8>,
}

impl ReplyPart {
    /// The `12 + len` bytes the kernel sends (the chunk is cut to
    /// [`MAX_REPLY_CHUNK`] bytes and NUL-terminated).
    pub fn encode(&self) -> Vec<u8> {
        let chunk = &self.data[..self.data.len().min(MAX_REPLY_CHUNK)];
        let len = chunk.len() + 1;
        let mut out = Vec::with_capacity(REPLY_HEADER_SIZE + len);
        out.extend_from_slice(&self.err.to_ne_bytes());
        out.extend_from_slice(&u32::from(self.more).to_ne_bytes());
        out.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        out.extend_from_slice(chunk);
        out.push(0);
        out
    }

    /// Validates one reply datagram: a full header, `len <= 512`, the
    /// datagram holds `len` data bytes, and is no longer than the C
    /// structure. The text is what precedes the first NUL (the original
    /// client concatenates C strings) and must fit 511 bytes. Any non-zero
    /// `more` means more.
    pub fn decode(datagram: &[u8]) -> Result<ReplyPart, ProtocolError> {
        const WHAT: &str = "reply";
        check_size(WHAT, datagram, REPLY_HEADER_SIZE, MAX_REPLY_SIZE)?;
        let data = payload(WHAT, datagram, 8, REPLY_HEADER_SIZE)?;
        let text = c_text(data);
        if text.len() > MAX_REPLY_CHUNK {
            return Err(ProtocolError::Unterminated {
                what: WHAT,
                max: MAX_REPLY_CHUNK,
            });
        }
        Ok(ReplyPart {
            err: word(datagram, 0),
            more: word(datagram, 4) != 0,
            data: text.to_vec(),
        })
    }
}

/// Splits a reply text into parts as the 6.1 kernel's `mconsole_reply_len`
/// does (spec §2.2): chunks of at most 511 bytes, `err` only on the first,
/// `more` on all but the last, whose `more` is the caller's `more`. An
/// empty text is one empty part.
pub fn split_reply(err: u32, text: &[u8], more: bool) -> Vec<ReplyPart> {
    let mut chunks: Vec<&[u8]> = text.chunks(MAX_REPLY_CHUNK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| ReplyPart {
            err: if i == 0 { err } else { 0 },
            more: if i == last { more } else { true },
            data: chunk.to_vec(),
        })
        .collect()
}

/// The kind of a notification (`enum mconsole_notify_type`, spec §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// `MCONSOLE_SOCKET`: the guest's mconsole socket path, sent at boot.
    Socket,
    /// `MCONSOLE_PANIC`: the panic message.
    Panic,
    /// `MCONSOLE_HANG`: defined, not sent by Linux 6.1.
    Hang,
    /// `MCONSOLE_USER_NOTIFY`: bytes written to the guest's `/proc/mconsole`.
    User,
    /// A type number this code does not know.
    Other(u32),
}

impl NotifyKind {
    /// The wire number of this kind.
    pub fn number(self) -> u32 {
        match self {
            NotifyKind::Socket => 0,
            NotifyKind::Panic => 1,
            NotifyKind::Hang => 2,
            NotifyKind::User => 3,
            NotifyKind::Other(n) => n,
        }
    }

    /// The kind for a wire number.
    pub fn from_number(n: u32) -> NotifyKind {
        match n {
            0 => NotifyKind::Socket,
            1 => NotifyKind::Panic,
            2 => NotifyKind::Hang,
            3 => NotifyKind::User,
            n => NotifyKind::Other(n),
        }
    }

    /// A short lower-case name: `socket`, `panic`, `hang`, `user`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Socket => "socket",
            NotifyKind::Panic => "panic",
            NotifyKind::Hang => "hang",
            NotifyKind::User => "user",
            NotifyKind::Other(_) => "other",
        }
    }
}

/// One notification datagram (`struct mconsole_notify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// What happened.
    pub kind: NotifyKind,
    /// The payload exactly as sent (the kernel includes a NUL in socket
    /// and panic payloads), at most 512 bytes.
    pub data: Vec<u8>,
}

impl Notification {
    /// The payload as text: the bytes before the first NUL.
    pub fn text(&self) -> &[u8] {
        c_text(&self.data)
    }

    /// The `16 + len` bytes the kernel sends (payload cut to 512 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let data = &self.data[..self.data.len().min(MCONSOLE_MAX_DATA)];
        let mut out = Vec::with_capacity(NOTIFY_HEADER_SIZE + data.len());
        out.extend_from_slice(&MCONSOLE_MAGIC.to_ne_bytes());
        out.extend_from_slice(&MCONSOLE_VERSION.to_ne_bytes());
        out.extend_from_slice(&self.kind.number().to_ne_bytes());
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_ne_bytes());
        out.extend_from_slice(data);
        out
    }

    /// Validates one notification datagram: magic, version 2, `len <= 512`
    /// and present in the datagram.
    pub fn decode(datagram: &[u8]) -> Result<Notification, ProtocolError> {
        const WHAT: &str = "notification";
        check_size(WHAT, datagram, NOTIFY_HEADER_SIZE, MAX_NOTIFY_SIZE)?;
        let magic = word(datagram, 0);
        if magic != MCONSOLE_MAGIC {
            return Err(ProtocolError::BadMagic(magic));
        }
        let version = word(datagram, 4);
        if version == 0 && word(datagram, 8) == MCONSOLE_VERSION {
            return Self::decode_long_magic(datagram);
        }
        if version != MCONSOLE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        let data = payload(WHAT, datagram, 12, NOTIFY_HEADER_SIZE)?;
        Ok(Notification {
            kind: NotifyKind::from_number(word(datagram, 8)),
            data: data.to_vec(),
        })
    }

    /// The layout of Debian's `uml_watchdog` on 64-bit hosts, whose
    /// structure declares the magic `unsigned long`: magic in 8 bytes,
    /// then version, type and length words, the data at 20, and 4 bytes of
    /// the structure's padding after the data.
    fn decode_long_magic(datagram: &[u8]) -> Result<Notification, ProtocolError> {
        const WHAT: &str = "notification";
        const HEADER: usize = 20;
        check_size(WHAT, datagram, HEADER, MAX_NOTIFY_SIZE + 8)?;
        let data = payload(WHAT, datagram, 16, HEADER)?;
        Ok(Notification {
            kind: NotifyKind::from_number(word(datagram, 12)),
            data: data.to_vec(),
        })
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
