//! Fuzz the kernel command-line parser: any host argv (the input split at
//! NUL bytes) parses or is refused with the kernel's error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    let _ = umlkit::kernel::cmdline::parse(&args);
});
