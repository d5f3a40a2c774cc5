//! Writes the shell completions of the clap tools into `completions/`
//! (bash, zsh, fish), generated from the same argument tables the tools
//! parse with (`umlkit::cli::clap_commands`). Run after changing a tool's
//! options:
//!
//! ```text
//! cargo run --release --example gen-docs
//! ```
//!
//! `tests/manpages.rs` includes this file and fails when the checked-in
//! files differ from what it generates.

use clap_complete::Shell;
use std::path::{Path, PathBuf};

/// Every generated file: its path relative to the repository and its text.
pub fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for mut command in umlkit::cli::clap_commands() {
        let name = command.get_name().to_string();
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut command, &name, &mut text);
            files.push((Path::new("completions").join(file), text));
        }
    }
    files
}

#[allow(dead_code)] // tests/manpages.rs includes this file without calling main
fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, text) in generated() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        std::fs::write(&path, text)?;
        println!("{}", path.display());
    }
    Ok(())
}
