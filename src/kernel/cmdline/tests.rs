use super::*;
use crate::kernel::cmdline::chan::Channel;

fn boot(args: &[&str]) -> CmdLine {
    let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse(&v).unwrap() {
        Invocation::Boot(c) => *c,
        other => panic!("{other:?}"),
    }
}

fn error(args: &[&str]) -> String {
    let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    parse(&v).unwrap_err().to_string()
}

#[test]
fn the_articles_command_line_parses_into_disks_root_and_consoles() {
    let c = boot(&[
        "ubd0=Debian1.cow,root_fs",
        "root=/dev/ubda",
        "rw",
        "init=/sbin/init",
        "mem=128M",
        "umid=debian1",
        "con=null",
        "con0=fd:0,fd:1",
    ]);
    let d = c.disks[0].as_ref().unwrap();
    assert_eq!(d.spec(), "Debian1.cow,root_fs");
    assert_eq!(root_unit(&c.root), Some(0));
    assert!(c.read_write);
    assert_eq!(c.init.as_deref(), Some("/sbin/init"));
    assert_eq!(c.mem, 128 << 20);
    assert_eq!(c.umid.as_deref(), Some("debian1"));
    let con0 = c.consoles[0].as_ref().unwrap();
    assert_eq!(
        (&con0.input, &con0.output),
        (&Channel::Fd(0), &Channel::Fd(1))
    );
    assert_eq!(c.consoles[1].as_ref().unwrap().output, Channel::Null);
    assert!(!c.line.contains("umid="), "umid= is removed from the line");
    assert!(c.line.ends_with(" console=tty0"));
    assert_eq!(c.init_env, ["HOME=/", "TERM=linux", "mem=128M"]);
}

#[test]
fn the_specs_example_gives_init_its_argv_and_environment() {
    let c = boot(&[
        "ubd0=a.cow,root_fs",
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "mem=64M",
        "umid=u1",
        "con=null",
        "con0=fd:0,fd:1",
        "FOO=bar",
        "plainarg",
    ]);
    assert_eq!(c.init_args, ["plainarg"]);
    assert_eq!(c.init_env, ["HOME=/", "TERM=linux", "mem=64M", "FOO=bar"]);
    assert_eq!(c.unknown.as_deref(), Some("plainarg mem=64M FOO=bar"));
    assert_eq!(
        c.line,
        "ubd0=a.cow,root_fs root=/dev/ubda rw init=/init mem=64M con=null con0=fd:0,fd:1 FOO=bar plainarg console=tty0"
    );
}

#[test]
fn defaults_append_root_and_console_and_read_only() {
    let c = boot(&[]);
    assert_eq!(c.line, "root=98:0 console=tty0");
    assert_eq!(root_unit(&c.root), Some(0));
    assert!(!c.read_write);
    assert_eq!(c.mem, DEFAULT_MEM);
    assert!(c.consoles[0].is_some() && c.consoles[1].is_none());
    assert!(c.unknown.is_none());
}

#[test]
fn init_clears_earlier_arguments_and_dashes_pass_everything_on() {
    assert_eq!(
        boot(&["plainA", "init=/init", "plainB"]).init_args,
        ["plainB"]
    );
    let c = boot(&["--", "a", "b=c"]);
    assert_eq!(c.init_args, ["a", "b=c", "root=98:0", "console=tty0"]);
    assert!(
        c.unknown.is_none(),
        "words after -- are not listed as unknown"
    );
}

#[test]
fn elements_with_spaces_become_several_words_and_quotes_are_removed() {
    let c = boot(&["TTYS=tty1 tty3"]);
    assert_eq!(c.init_args, ["tty3"]);
    assert!(c.init_env.contains(&"TTYS=tty1".to_string()));
    let c = boot(&["TTYS=\"a b\""]);
    assert!(c.init_env.contains(&"TTYS=a b".to_string()));
}

#[test]
fn later_env_entries_replace_earlier_ones_and_module_params_are_dropped() {
    let c = boot(&["A=1", "A=2", "foo.bar=3", "x.y"]);
    assert_eq!(c.init_env, ["HOME=/", "TERM=linux", "A=2"]);
    assert!(c.init_args.is_empty());
}

#[test]
fn a_leading_space_skips_the_first_argument() {
    let c = boot(&[" junk", "X=1"]);
    assert!(!c.line.contains("junk"));
}

#[test]
fn help_and_version_run_in_argv_order() {
    let v = |a: &[&str]| parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    assert_eq!(v(&["--version", "--help"]), Invocation::Version);
    assert_eq!(v(&["--showconfig"]), Invocation::ShowConfig);
    assert_eq!(v(&["--help", "--version"]), Invocation::Help);
    assert_eq!(
        v(&["ubd4x=foo", "--help"]),
        Invocation::Help,
        "help wins over later errors"
    );
}

#[test]
fn umid_rules_first_wins_and_overlong_is_ignored() {
    let c = boot(&["umid=one", "umid=two"]);
    assert_eq!(c.umid.as_deref(), Some("one"));
    assert_eq!(c.notices, ["umid already set"]);
    assert!(c.init_env.contains(&"umid=two".to_string()));
    let long = format!("umid={}", "x".repeat(64));
    assert_eq!(boot(&[&long]).umid, None);
}

#[test]
fn malformed_options_give_the_kernels_errors() {
    assert!(error(&["ubd4x=foo"]).contains("Expected '=' or flag letter"));
    assert!(error(&["ubdc=a", "ubd2=b"]).ends_with("Device is already configured"));
    assert!(error(&["con99=null"]).ends_with("Device number out of range"));
    assert!(error(&["con0=bogus"]).starts_with("setup_one_line failed for device 0"));
    assert_eq!(
        error(&["ethX=foo"]),
        "eth_setup - Couldn't parse 'X=foo' : Bad device number"
    );
    assert_eq!(
        error(&["eth1"]),
        "eth_setup - Couldn't parse '1' : Expected '=' after device number"
    );
    assert!(error(&["mem=16M"]).starts_with("Too few physical memory! Needed="));
    let huge = "x".repeat(5000);
    assert_eq!(error(&[&huge]), "add_arg: Too many command line arguments!");
}

#[test]
fn console_is_not_a_channel_option_and_keeps_console_tty0_off() {
    let c = boot(&["console=tty1"]);
    assert!(!c.line.contains("console=tty0"));
    assert!(c.consoles[0].is_some());
}

#[test]
fn uml_flags_are_prefix_keys_and_still_reach_init() {
    let c = boot(&["quiet", "noreboot", "uml_dir=/tmp/u", "hostfs=/srv"]);
    assert!(c.quiet && c.noreboot);
    assert_eq!(
        c.init_args,
        ["noreboot"],
        "quiet is consumed, noreboot reaches argv"
    );
    assert_eq!(c.uml_dir.as_deref(), Some("/tmp/u"));
    assert_eq!(c.hostfs.as_deref(), Some("/srv"));
    assert!(c.init_env.contains(&"uml_dir=/tmp/u".to_string()));
}

#[test]
fn notify_and_eth_and_udb_are_recorded() {
    let c = boot(&[
        "mconsole=notify:/tmp/s",
        "eth0=tuntap,tap0",
        "udb0=typo",
        "ubd=sync",
    ]);
    assert_eq!(c.notify.as_deref(), Some("/tmp/s"));
    assert_eq!(c.eths, [(0, "tuntap,tap0".to_string())]);
    assert!(c.notices[0].contains("almost certainly a ubd -> udb TYPO"));
    assert!(c.ubd_sync_all);
}

#[test]
fn too_many_init_arguments_is_the_kernels_panic() {
    let many: Vec<String> = (0..=MAX_INIT_ARGS).map(|i| format!("w{i}")).collect();
    let e = parse(&many).unwrap_err();
    assert!(
        e.to_string().contains("Too many boot init vars at `w128'"),
        "{e}"
    );
}

#[test]
fn root_units_name_whole_ubd_disks_only() {
    assert_eq!(root_unit("/dev/ubda"), Some(0));
    assert_eq!(root_unit("/dev/ubdc"), Some(2));
    assert_eq!(root_unit("98:16"), Some(1));
    assert_eq!(root_unit("98:1"), None);
    assert_eq!(root_unit("/dev/sda1"), None);
    assert_eq!(root_unit("/dev/ubdz"), None);
}

proptest::proptest! {
    #[test]
    fn random_arguments_never_panic(args in proptest::collection::vec(".{0,40}", 0..12)) {
        let _ = parse(&args);
    }

    #[test]
    fn random_option_like_arguments_never_panic(
        args in proptest::collection::vec("(ubd|con|ssl|eth|mem=|umid=|init=|root=|--)[a-z0-9=,:\" ]{0,12}", 0..8)
    ) {
        let _ = parse(&args);
    }
}

#[test]
fn umlkit_nested_userns_is_a_module_parameter_of_ours_not_an_init_word() {
    let c = boot(&["umlkit.nested_userns"]);
    assert!(c.nested_userns);
    let plain = boot(&[]);
    assert_eq!(
        (&c.init_args, &c.init_env),
        (&plain.init_args, &plain.init_env)
    );
    assert!(!boot(&["umlkit.nested_userns=0"]).nested_userns);
    assert!(!boot(&["rw"]).nested_userns);
}

#[test]
fn mem_is_memparsed_with_any_case_suffix_and_the_last_one_wins() {
    for (arg, bytes) in [
        ("mem=32M", 32u64 << 20),
        ("mem=32m", 32 << 20),
        ("mem=1g", 1 << 30),
        ("mem=1G", 1 << 30),
        ("mem=65536k", 64 << 20),
        ("mem=2T", 2 << 40),
        ("mem=0x2000000", 32 << 20),
        ("mem=40Mjunk", 40 << 20),
        ("mem=20000000", 20_000_000),
    ] {
        assert_eq!(boot(&[arg]).mem, bytes, "{arg}");
    }
    assert_eq!(boot(&["mem=128M", "mem=48M"]).mem, 48 << 20);
    // A key is a prefix: `memory=` is not `mem=`.
    assert_eq!(boot(&["memory=1M"]).mem, DEFAULT_MEM);
}

#[test]
fn mem_stays_on_the_line_and_reaches_init_as_the_spec_verified() {
    // spec §1.2 and §1.4 (verified on linux.uml): no kernel handler claims
    // `mem=`, so it is listed as unknown and lands in init's environment.
    let c = boot(&["mem=48M", "X=1"]);
    assert_eq!(c.line, "mem=48M X=1 root=98:0 console=tty0");
    assert_eq!(c.init_env, ["HOME=/", "TERM=linux", "mem=48M", "X=1"]);
    assert_eq!(c.unknown.as_deref(), Some("mem=48M X=1"));
}

#[test]
fn too_little_or_unparsable_mem_is_the_too_few_physical_memory_error() {
    let needed = MIN_MEM;
    for (arg, given) in [
        ("mem=16M", 16u64 << 20),
        ("mem=1M", 1 << 20),
        ("mem=64", 64),
        ("mem=abc", 0),
        ("mem=", 0),
        ("mem=-1G", 0),
    ] {
        assert_eq!(
            error(&[arg]),
            format!("Too few physical memory! Needed={needed}, given={given}"),
            "{arg}"
        );
    }
    assert_eq!(boot(&["mem=17M"]).mem, MIN_MEM);
}

/// Whether `word` means something to the parser: it is kept from init, or
/// it sets something beyond the line and init's argv and environment.
fn claimed(word: &str) -> bool {
    let v = vec![word.to_string()];
    let c = match parse(&v) {
        Ok(Invocation::Boot(c)) => *c,
        Ok(_) | Err(_) => return true,
    };
    let to_init = c.init_args.iter().chain(&c.init_env).any(|w| w == word);
    let strip = |mut c: CmdLine| {
        c.line.clear();
        c.init_args.clear();
        c.init_env.clear();
        c.unknown = None;
        c
    };
    !to_init || strip(c) != strip(boot(&[]))
}

#[test]
fn every_name_in_the_options_table_is_claimed_by_the_parser() {
    let example = |o: &str| -> String {
        match o {
            "--help" | "--version" | "--showconfig" | "quiet" | "noreboot" | "fake_ide"
            | "ssl-non-raw" | "rw" | "ro" | "rootwait" | "debug" => o.into(),
            "mem=" => "mem=128M".into(),
            "umid=" => "umid=g1".into(),
            "uml_dir=" => "uml_dir=/tmp/u".into(),
            "hostfs=" => "hostfs=/srv".into(),
            "ubd" => "ubd1=disk.img".into(),
            "udb" => "udb0=disk.img".into(),
            "vec" => "vec0:transport=tap".into(),
            "stderr=" => "stderr=1".into(),
            "con" => "con1=null".into(),
            "ssl" => "ssl0=null".into(),
            "eth" => "eth0=daemon".into(),
            "mconsole=" => "mconsole=notify:/tmp/n".into(),
            "umlkit.nested_userns" => "umlkit.nested_userns=1".into(),
            "root=" => "root=/dev/ubdb".into(),
            "init=" => "init=/bin/sh".into(),
            o if o.ends_with('=') => format!("{o}1"),
            o => panic!("no example for {o}: add one"),
        }
    };
    for o in OPTIONS {
        let w = example(o);
        assert!(claimed(&w), "{o} ({w}) is in OPTIONS but goes to init");
    }
    for w in ["frobnicate", "frob=1", "rootfs=1", "ubdfoo"] {
        let w_claimed = claimed(w);
        let listed = OPTIONS
            .iter()
            .any(|o| w.starts_with(o.trim_end_matches('=')));
        assert!(!w_claimed || listed, "{w} is claimed but not in OPTIONS");
    }
    assert!(!claimed("frobnicate") && !claimed("frob=1"));
}

#[test]
fn vec_devices_are_recorded_by_unit_with_their_options() {
    let c = boot(&[
        "vec0:transport=tap,ifname=t0",
        "vec0x1:transport=vde,vnl=vde:///s",
    ]);
    assert_eq!(
        c.vecs,
        [
            (0, "transport=tap,ifname=t0".to_string()),
            (1, "transport=vde,vnl=vde:///s".to_string())
        ]
    );
    assert!(c.init_args.is_empty() && c.unknown.is_none());
}

#[test]
fn bad_vec_numbers_give_the_kernels_vector_setup_errors() {
    assert_eq!(
        error(&["vecX:transport=tap"]),
        "vector_setup - Couldn't parse 'X' : Bad device number"
    );
    assert_eq!(
        error(&["vec1"]),
        "vector_setup - Couldn't parse '1' : Expected ':' after device number"
    );
    assert_eq!(
        error(&["vec1:transport=tap", "vec1:transport=raw"]),
        "vector_setup - Couldn't parse '1' : Device already configured"
    );
}
