use super::*;
use crate::mconsole::commands::{lookup, Command, HELP_TEXT, UNKNOWN_COMMAND};
use crate::mconsole::server::Server;
use std::time::Duration;

/// Records everything a session outputs.
#[derive(Default)]
struct Record {
    text: String,
    errors: Vec<String>,
}

impl Output for Record {
    fn reply(&mut self, _command: &[u8], reply: &Reply) -> io::Result<()> {
        let tag = if reply.final_err != 0 { "ERR" } else { "OK" };
        self.text
            .push_str(&format!("{tag} {}\n", String::from_utf8_lossy(&reply.text)));
        Ok(())
    }
    fn local(&mut self, text: &[u8]) -> io::Result<()> {
        self.text.push_str(&String::from_utf8_lossy(text));
        Ok(())
    }
    fn error(&mut self, error: &Error) -> io::Result<()> {
        self.errors.push(error.to_string());
        Ok(())
    }
}

/// A fake guest answering like 6.1 (help, version, unknown) and
/// recording the commands it got, until `halt`.
struct FakeGuest {
    dir: tempfile::TempDir,
    socket: PathBuf,
    thread: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

fn fake_guest() -> FakeGuest {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mconsole");
    let server = Server::bind(&socket).unwrap();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        loop {
            let Some((req, from)) = server.check(server.receive().unwrap()).unwrap() else {
                continue;
            };
            seen.push(req.command.clone());
            match lookup(&req.command).map(|c| c.0) {
                Some(Command::Help) => server.reply(&from, 0, HELP_TEXT.as_bytes(), false).unwrap(),
                Some(Command::Version) => server.reply(&from, 0, b"Linux fake", false).unwrap(),
                Some(Command::Remove) => server
                    .reply(&from, (-19i32) as u32, b"Device doesn't exist", false)
                    .unwrap(),
                Some(Command::Halt) => {
                    server.reply(&from, 0, b"", false).unwrap();
                    return seen;
                }
                Some(_) => server.reply(&from, 0, b"", false).unwrap(),
                None => server
                    .reply(&from, 1, UNKNOWN_COMMAND.as_bytes(), false)
                    .unwrap(),
            }
        }
    });
    FakeGuest {
        dir,
        socket,
        thread,
    }
}

fn session(guest: &FakeGuest) -> Session {
    Session::new(
        Client::new(Some(Duration::from_secs(5))).unwrap(),
        guest.socket.as_os_str(),
    )
}

fn finish(guest: FakeGuest, s: &mut Session) -> Vec<Vec<u8>> {
    s.execute(b"halt", &mut Record::default()).unwrap();
    guest.thread.join().unwrap()
}

#[test]
fn replies_print_as_ok_or_err_and_give_the_exit_status() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let mut out = Record::default();
    assert_eq!(s.execute(b"version  \n", &mut out).unwrap().code, 0);
    assert_eq!(s.execute(b"bogus", &mut out).unwrap().code, 1);
    assert_eq!(s.execute(b"remove ubd5", &mut out).unwrap().code, 237);
    assert_eq!(
        out.text,
        "OK Linux fake\nERR Unknown command\nERR Device doesn't exist\n"
    );
    let seen = finish(guest, &mut s);
    assert_eq!(seen[0], b"version");
}

#[test]
fn local_commands_match_by_prefix_and_do_not_reach_the_guest() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let mut out = Record::default();
    assert_eq!(s.execute(b"mconsole-versionX", &mut out).unwrap().code, 0);
    assert_eq!(s.execute(b"int", &mut out).unwrap().code, 0);
    assert_eq!(
        s.execute(b"quitting", &mut out).unwrap(),
        Status {
            code: 0,
            exit: true
        }
    );
    assert_eq!(out.text, format!("{CLIENT_VERSION}{NO_PID}"));
    assert_eq!(finish(guest, &mut s), [b"halt".to_vec()]);
}

#[test]
fn help_prints_the_guest_help_then_the_local_help() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let mut out = Record::default();
    assert_eq!(s.execute(b"helpme", &mut out).unwrap().code, 0);
    assert_eq!(out.text, format!("OK {HELP_TEXT}\n{LOCAL_HELP}"));
    assert_eq!(finish(guest, &mut s)[0], b"helpme");
}

#[test]
fn log_sends_chunks_and_a_final_newline() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let mut out = Record::default();
    s.execute(b"log hello there", &mut out).unwrap();
    let long = vec![b'x'; 1000];
    let mut line = b"log ".to_vec();
    line.extend_from_slice(&long);
    s.execute(&line, &mut out).unwrap();
    let file = guest.dir.path().join("msgs");
    std::fs::write(&file, "one\ntwo\n").unwrap();
    let mut line = b"log -f ".to_vec();
    line.extend_from_slice(file.as_os_str().as_bytes());
    assert_eq!(s.execute(&line, &mut out).unwrap().code, 0);
    let seen = finish(guest, &mut s);
    let mut expect: Vec<Vec<u8>> = vec![b"log hello there".to_vec(), b"log \n".to_vec()];
    expect.push([b"log ".as_slice(), &long[..506]].concat());
    expect.push([b"log ".as_slice(), &long[506..]].concat());
    expect.push(b"log \n".to_vec());
    expect.push(b"log one\ntwo\n".to_vec());
    expect.push(b"halt".to_vec());
    assert_eq!(seen, expect);
    assert_eq!(out.text, "OK \n".repeat(6));
}

#[test]
fn log_of_a_missing_file_fails_and_exits() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let mut out = Record::default();
    let status = s.execute(b"log -f /nonexistent/file", &mut out).unwrap();
    assert_eq!(
        status,
        Status {
            code: 1,
            exit: true
        }
    );
    assert!(
        out.errors[0].contains("/nonexistent/file"),
        "{:?}",
        out.errors
    );
    finish(guest, &mut s);
}

#[test]
fn switch_to_an_unknown_name_keeps_the_current_guest() {
    let guest = fake_guest();
    let mut s = session(&guest);
    let prompt = s.prompt();
    let mut out = Record::default();
    assert_eq!(
        s.execute(b"switch /no/such/guest", &mut out).unwrap().code,
        1
    );
    assert_eq!(s.prompt(), prompt);
    assert!(
        out.errors[0].contains("no guest named '/no/such/guest'"),
        "{:?}",
        out.errors
    );
    let path = guest.socket.clone();
    let mut line = b"switch ".to_vec();
    line.extend_from_slice(path.as_os_str().as_bytes());
    assert_eq!(s.execute(&line, &mut out).unwrap().code, 0);
    assert_eq!(out.text, format!("Switched to '{}'\n", path.display()));
    finish(guest, &mut s);
}

#[test]
fn an_unknown_umid_fails_each_command_with_one_clear_error() {
    let mut s = Session::new(Client::new(None).unwrap(), OsStr::new("no-such-umid-here"));
    assert_eq!(s.prompt(), b"([None]) ");
    let mut out = Record::default();
    assert_eq!(s.execute(b"version", &mut out).unwrap().code, 1);
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0].starts_with("no guest named 'no-such-umid-here'"),
        "{}",
        out.errors[0]
    );
    assert!(
        out.errors[0].contains("/tmp/uml/no-such-umid-here/mconsole"),
        "{}",
        out.errors[0]
    );
    assert_eq!(s.execute(b"log a\nb", &mut out).unwrap().code, 1);
    assert_eq!(out.errors.len(), 2, "{:?}", out.errors);
    assert_eq!(s.execute(b"mconsole-version", &mut out).unwrap().code, 0);
}

#[test]
fn config_ubd_file_names_become_absolute() {
    let cwd = std::env::current_dir().unwrap();
    let cwd = cwd.to_str().unwrap();
    assert_eq!(
        fix_filenames(b"config ubd1=disk.img"),
        format!("config ubd1={cwd}/disk.img").as_bytes()
    );
    assert_eq!(
        fix_filenames(b"config  ubd2r=a.cow,b.img"),
        format!("config  ubd2r={cwd}/a.cow,{cwd}/b.img").as_bytes()
    );
    assert_eq!(
        fix_filenames(b"config ubd1=/tmp/../tmp/x"),
        b"config ubd1=/tmp/x"
    );
    assert_eq!(
        fix_filenames(b"config ubd1=/nonexistent-dir/x"),
        b"config ubd1=/nonexistent-dir/x"
    );
    assert_eq!(fix_filenames(b"config ubd1"), b"config ubd1");
    assert_eq!(
        fix_filenames(b"config eth0=tuntap,,,1.2.3.4"),
        b"config eth0=tuntap,,,1.2.3.4"
    );
    assert_eq!(fix_filenames(b"version"), b"version");
}

#[test]
fn one_shot_words_join_with_single_spaces() {
    let words: Vec<OsString> = ["log", "a", "b"].iter().map(OsString::from).collect();
    assert_eq!(join_words(&words), b"log a b");
}
