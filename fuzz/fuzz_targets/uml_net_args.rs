#![no_main]
//! Splits arbitrary bytes into argv words (at NUL bytes) and parses them as
//! a uml_net invocation; also feeds them to the /proc/net/route parser.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.split('\0').map(str::to_string).take(16).collect();
    if let Ok(r) = umlkit::net::Request::parse(&args) {
        assert_eq!(umlkit::net::Request::parse(&r.to_argv()), Ok(r));
    }
    let _ = umlkit::net::host::parse_proc_route(&text);
});
