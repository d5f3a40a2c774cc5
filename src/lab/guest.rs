//! What runs inside a lab machine: the init wrapper `uml_lab` places in
//! each machine's disk at `/uml_lab/init`, and the line protocol its small
//! command agent speaks on the guest's first serial line.
//!
//! The guest boots with `init=/uml_lab/init`. The wrapper sets the
//! hostname, brings `lo` up, mounts the lab directory at `/hostlab` and
//! the user's home at `/hosthome` with hostfs (the `hostlab=` and
//! `hosthome=` words of the kernel's line, as Netkit passes them), runs
//! `shared.startup` and `MACHINE.startup` (from `/hostlab` as Netkit does,
//! or the copies in `/uml_lab/` when `/hostlab` is not there), writes
//! [`READY`] on `/dev/ttyS0`, leaves the agent reading `/dev/ttyS0` in the
//! background, and execs the image's own init (`UML_LAB_INIT`): busybox
//! init, sysvinit or a script, unchanged.
//!
//! `/dev/ttyS0` is `ssl0=fd:3,fd:4` on the host: a FIFO `uml_lab` writes
//! requests into and a file it reads replies from. A request is one line,
//! `ID COMMAND`, with the command escaped for `printf %b` (see
//! [`encode_command`]); the reply is framed by markers carrying the id
//! (see [`parse_reply`]). Commands run one at a time, as guest root, by
//! `sh -c`, with standard input from `/dev/null`.
#![forbid(unsafe_code)]

/// Written on the agent's line once the startup scripts are done.
pub const READY: &str = "@@UMLLAB-READY@@";

/// The init wrapper.
pub const INIT: &str = r#"#!/bin/sh
# Written by uml_lab(1): runs the lab's startup scripts, starts the command
# agent on /dev/ttyS0, then execs the image's own init.
PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin
export PATH
L=/uml_lab
T=/dev/ttyS0
[ -n "$UML_LAB_NAME" ] && hostname "$UML_LAB_NAME" 2>/dev/null
stty raw -echo < $T 2>/dev/null
ifconfig lo 127.0.0.1 up 2>/dev/null || ip link set lo up 2>/dev/null
[ -f $L/net ] && . $L/net
hostfs() {
  mkdir -p "$2" 2>/dev/null
  mount -t hostfs $3 none "$2" -o "$1" && return 0
  echo "uml_lab: cannot mount $2"
  return 1
}
S="$L/shared.startup $L/machine.startup"
if [ -n "$hostlab" ] && hostfs "$hostlab" /hostlab "${UML_LAB_HOSTLAB_RO:+-r}"; then
  S="/hostlab/shared.startup /hostlab/$UML_LAB_NAME.startup"
fi
[ -n "$hosthome" ] && hostfs "$hosthome" /hosthome
for s in $S; do
  if [ -f $s ]; then
    echo "uml_lab: running ${s##*/}"
    sh $s
  fi
done
echo "@@UMLLAB-READY@@" > $T
# Replies are staged in /uml_lab, not /tmp: the image's boot scripts clean
# /tmp (Debian's bootclean) while commands may already run.
agent() {
  while read -r id cmd; do
    cmd=$(printf '%b' "$cmd")
    sh -c "$cmd" </dev/null >$L/.out 2>$L/.err
    rc=$?
    printf '@@UMLLAB-OUT %s@@\n' "$id"
    cat $L/.out
    printf '\n@@UMLLAB-ERR %s@@\n' "$id"
    cat $L/.err
    printf '\n@@UMLLAB-END %s %s@@\n' "$id" "$rc"
    rm -f $L/.out $L/.err
  done
}
agent < $T > $T 2>&1 &
init="${UML_LAB_INIT:-/sbin/init}"
unset UML_LAB_INIT
exec "$init" "$@"
"#;

/// The shutdown script: `shared.shutdown`, then `MACHINE.shutdown`.
pub const SHUTDOWN: &str = r#"#!/bin/sh
# Written by uml_lab(1): run at `uml_lab stop`, before the halt.
for s in shared.shutdown machine.shutdown; do
  [ -f /uml_lab/$s ] && sh /uml_lab/$s
done
exit 0
"#;

/// The `net` fragment the wrapper sources: addresses of TAP interfaces
/// (`machine[N]=tap,HOST,GUEST`), as Netkit configures them.
pub fn net_fragment(taps: &[(u32, String)]) -> String {
    taps.iter()
        .map(|(n, ip)| {
            format!("ifconfig eth{n} {ip} up 2>/dev/null || ip addr add {ip} dev eth{n}\n")
        })
        .collect()
}

/// Why a command cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A NUL byte (no shell can hold it).
    #[error("the command contains a NUL byte")]
    Nul,
    /// Nothing to run.
    #[error("no command given")]
    Empty,
}

/// The command as one line for `printf %b`: `\` doubled, newlines `\n`,
/// other control and non-ASCII bytes as `\0ooo`.
pub fn encode_command(cmd: &[u8]) -> Result<String, CommandError> {
    if cmd.contains(&0) {
        return Err(CommandError::Nul);
    }
    if cmd.iter().all(u8::is_ascii_whitespace) {
        return Err(CommandError::Empty);
    }
    let mut s = String::with_capacity(cmd.len());
    for &b in cmd {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\0{b:03o}")),
        }
    }
    Ok(s)
}

/// The request line for command `id`.
pub fn request(id: &str, cmd: &[u8]) -> Result<String, CommandError> {
    Ok(format!("{id} {}\n", encode_command(cmd)?))
}

/// A command's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Its exit status.
    pub status: i32,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The reply to request `id` in the agent's output `out`, once complete.
pub fn parse_reply(out: &[u8], id: &str) -> Option<Reply> {
    let begin = format!("@@UMLLAB-OUT {id}@@\n");
    let err = format!("\n@@UMLLAB-ERR {id}@@\n");
    let end = format!("\n@@UMLLAB-END {id} ");
    let b = find(out, begin.as_bytes())? + begin.len();
    let rest = &out[b..];
    let e = find(rest, err.as_bytes())?;
    let stdout = rest[..e].to_vec();
    let rest = &rest[e + err.len()..];
    let f = find(rest, end.as_bytes())?;
    let stderr = rest[..f].to_vec();
    let tail = &rest[f + end.len()..];
    let close = find(tail, b"@@\n")?;
    let status = std::str::from_utf8(&tail[..close]).ok()?.parse().ok()?;
    Some(Reply {
        stdout,
        stderr,
        status,
    })
}

/// True when `out` holds the ready marker.
pub fn is_ready(out: &[u8]) -> bool {
    find(out, READY.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_escaped_for_printf_b_on_one_line() {
        assert_eq!(
            encode_command(b"echo a\\b\nls").unwrap(),
            "echo a\\\\b\\nls"
        );
        assert_eq!(encode_command(b"x\x01\xff").unwrap(), "x\\0001\\0377");
        assert_eq!(encode_command(b"a\0b"), Err(CommandError::Nul));
        assert_eq!(encode_command(b"  "), Err(CommandError::Empty));
        assert!(!request("7", b"a\nb").unwrap().trim_end().contains('\n'));
    }

    #[test]
    fn a_reply_is_found_by_its_id_among_others() {
        let out =
            b"@@UMLLAB-READY@@\n@@UMLLAB-OUT 1@@\nold\n\n@@UMLLAB-ERR 1@@\n\n@@UMLLAB-END 1 0@@\n\
                    @@UMLLAB-OUT 2@@\nhi\n\n@@UMLLAB-ERR 2@@\nbad\n@@UMLLAB-END 2 3@@\n";
        let r = parse_reply(out, "2").unwrap();
        assert_eq!(r.stdout, b"hi\n");
        assert_eq!(r.stderr, b"bad");
        assert_eq!(r.status, 3);
        assert_eq!(parse_reply(out, "1").unwrap().stdout, b"old\n");
        assert!(parse_reply(&out[..out.len() - 4], "2").is_none());
        assert!(parse_reply(out, "3").is_none());
        assert!(is_ready(out));
    }

    #[test]
    fn the_wrapper_runs_the_scripts_then_the_images_init() {
        let mount = INIT.find("mount -t hostfs").unwrap();
        let run = INIT.find("sh $s").unwrap();
        assert!(mount < run);
        let ready = INIT.find("@@UMLLAB-READY@@").unwrap();
        let exec = INIT.find("exec \"$init\"").unwrap();
        assert!(run < ready && ready < exec);
    }

    #[test]
    fn the_agent_stages_replies_where_boot_scripts_do_not_clean() {
        assert!(!INIT.contains(">/tmp/"), "Debian's bootclean empties /tmp");
        assert!(INIT.contains(">$L/.out 2>$L/.err"));
    }

    proptest::proptest! {
        #[test]
        fn reply_parsing_never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_reply(&s, "1");
        }
    }
}
