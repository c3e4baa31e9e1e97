//! The `oathbridge` command line: a thin edge over the protocol core.

pub mod accounts;
pub mod add;
pub mod admin;
pub mod backend;
pub mod doctor;
pub mod emulate;
pub mod error;
pub mod fido_keys;
pub mod hid_keys;
pub mod input;
pub mod keys;
mod lookup;
pub mod otp_slot;
pub mod output;
pub mod via_daemon;
pub mod virtual_key;
pub mod watch;

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use error::CliResult;
use keys::KeyFilter;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure
  2  usage error or invalid input
  3  no matching account
  4  ambiguous query or several keys
  5  no key found, or pcscd unreachable
  6  password required or wrong
  7  touch timed out
  8  key full, or not supported by this key";

#[derive(Debug, Parser)]
#[command(name = "oathbridge", version, about = "TOTP/HOTP codes from OATH security keys (YubiKey, Nitrokey 3, CanoKey)", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Use only readers whose name contains this text (case-insensitive)
    #[arg(long, global = true, value_name = "NAME")]
    pub reader: Option<String>,
    /// Use only the key with this device id or serial number
    #[arg(long, global = true, value_name = "ID")]
    pub device: Option<String>,
    /// Print machine-readable JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more (repeat for even more); logs never contain secrets
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Talk to the keys directly, even when the daemon is on the session bus
    #[arg(long, global = true)]
    pub direct: bool,
    /// Also use the HID device behind this bridge socket (`oathbridge emulate --hid`;
    /// repeatable; more in OATHBRIDGE_HID_SOCKETS, colon-separated)
    #[arg(long = "hid-socket", global = true, value_name = "PATH")]
    pub hid_sockets: Vec<std::path::PathBuf>,
}

impl GlobalArgs {
    pub fn filter(&self) -> KeyFilter {
        KeyFilter {
            reader: self.reader.clone(),
            device: self.device.clone(),
            hid_sockets: self.hid_sockets.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List connected OATH keys, and FIDO2 keys (for sealing virtual keys)
    Devices(admin::DevicesArgs),
    /// List accounts on all connected keys
    List(accounts::ListArgs),
    /// Show codes
    Code(accounts::CodeArgs),
    /// Add an account (the secret is read from a file, stdin or a hidden prompt, never argv)
    Add(add::AddArgs),
    /// Delete one account
    Delete(accounts::DeleteArgs),
    /// Rename one account
    Rename(accounts::RenameArgs),
    /// Set, clear or check the key's OATH password
    Password(admin::PasswordArgs),
    /// Delete every account and the password from a key
    Reset(admin::ResetArgs),
    /// Virtual keys sealed by a FIDO2 key's hmac-secret: create, seal, info
    VirtualKey(virtual_key::VirtualKeyArgs),
    /// Run a software OATH card attached to pcscd through vpcd and/or as a HID device (--hid)
    Emulate(emulate::EmulateArgs),
    /// Serve codes on the D-Bus session bus (io.github.oathbridge.OathBridge1)
    Daemon(crate::daemon::DaemonArgs),
    /// Check pcscd, readers, keys, gpg, D-Bus and the clock, and say how to fix problems
    ///
    /// One line per check: ok, warn or FAIL, what was found, and the command that fixes it;
    /// then "all good" or "N problems, M warnings". Only looks: cards are opened in shared
    /// mode, no other program is stopped, and every external call gives up after 2 s.
    #[command(after_help = doctor::EXIT_CODES)]
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script
    ///
    /// Bash: oathbridge completions bash > ~/.local/share/bash-completion/completions/oathbridge
    ///
    /// Zsh: oathbridge completions zsh > ~/.zfunc/_oathbridge (with ~/.zfunc in fpath)
    ///
    /// Fish: oathbridge completions fish > ~/.config/fish/completions/oathbridge.fish
    Completions(CompletionsArgs),
    /// Print the manual page (roff)
    ///
    /// Read it with `oathbridge man | man -l -`, or install it with
    /// `oathbridge man > ~/.local/share/man/man1/oathbridge.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Completions and the man page describe the parser itself: no key is involved.
fn completions(args: &CompletionsArgs) -> CliResult<()> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "oathbridge",
        &mut std::io::stdout(),
    );
    Ok(())
}

fn man() -> CliResult<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())?;
    Ok(())
}

pub fn run(cli: Cli) -> ExitCode {
    let result: CliResult<()> = match cli.command {
        Command::Devices(args) => admin::devices(&cli.global, &args),
        Command::List(args) => accounts::list(&cli.global, &args),
        Command::Code(args) => accounts::code(&cli.global, &args),
        Command::Add(args) => add::add(&cli.global, &args),
        Command::Delete(args) => accounts::delete(&cli.global, &args),
        Command::Rename(args) => accounts::rename(&cli.global, &args),
        Command::Password(args) => admin::password(&cli.global, &args),
        Command::Reset(args) => admin::reset(&cli.global, &args),
        Command::VirtualKey(args) => virtual_key::run(&cli.global, &args),
        Command::Emulate(args) => return emulate::run(args),
        Command::Daemon(args) => return crate::daemon::run(args),
        Command::Doctor(args) => return doctor::run(&cli.global, &args),
        Command::Completions(args) => completions(&args),
        Command::Man => man(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.report(),
    }
}
