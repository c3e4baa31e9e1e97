//! Another program holding a reader's card exclusively (what gpg's scdaemon does): the
//! test binary itself, re-run as its ignored test `hold_card_exclusively`, which calls
//! [`hold_if_asked`]. A test binary using [`Holder::start`] must define that test:
//!
//! ```ignore
//! #[test]
//! #[ignore = "helper process"]
//! fn hold_card_exclusively() {
//!     common::holder::hold_if_asked();
//! }
//! ```

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TestBed;
use super::proc::stop_child;

const HOLD_ENV: &str = "OATHBRIDGE_TEST_HOLD_READER";

/// In the helper process: connect to the reader named in the environment exclusively,
/// say "holding", and keep it until stdin closes. Does nothing in a normal test run.
pub fn hold_if_asked() {
    let Ok(reader) = std::env::var(HOLD_ENV) else {
        return;
    };
    let context = pcsc::Context::establish(pcsc::Scope::User).expect("holder: establish");
    let name = CString::new(reader).expect("reader name");
    let card = context
        .connect(&name, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .expect("holder: exclusive connect");
    println!("holding");
    std::io::stdout().flush().expect("flush");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
}

/// The running helper; releases the card when dropped.
pub struct Holder {
    child: Child,
}

impl Holder {
    /// Start the helper on `reader` and wait (10 s) until it holds the card.
    pub fn start(bed: &TestBed, reader: &str) -> Holder {
        Self::start_as(bed, reader, None)
    }

    /// [`Holder::start`], the process named `name` (a symlink to the test binary), e.g.
    /// `scdaemon` for checks that name the holder.
    pub fn start_as(bed: &TestBed, reader: &str, name: Option<&str>) -> Holder {
        let exe = std::env::current_exe().expect("test exe");
        let program = match name {
            Some(name) => {
                let dir = bed.dir().join("holder");
                std::fs::create_dir_all(&dir).expect("holder dir");
                let link = dir.join(name);
                std::os::unix::fs::symlink(&exe, &link).expect("symlink the holder");
                link
            }
            None => exe,
        };
        let mut command = std::process::Command::new(program);
        bed.apply_env(&mut command);
        command
            .args([
                "hold_card_exclusively",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HOLD_ENV, reader)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(bed.dir().join("holder.log")).expect("holder.log"));
        let mut child = command.spawn().expect("start the holder");
        let stdout = child.stdout.take().expect("holder stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) if line.trim_end().ends_with("holding") => return Holder { child },
                Ok(line) => said.push(line),
                Err(_) => {
                    stop_child(&mut child, Duration::from_secs(2));
                    panic!(
                        "the holder did not take the card; it said:\n{}\n{}",
                        said.join("\n"),
                        bed.logs()
                    );
                }
            }
        }
    }

    /// Still holding (the process runs).
    pub fn is_holding(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        stop_child(&mut self.child, Duration::from_secs(3));
    }
}
