//! How push and pull show progress: a bar per blob on a terminal (indicatif), one plain line
//! per blob otherwise (logs, CI), nothing with `--quiet`.

use std::cell::RefCell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use wasmbox_image::registry::{Progress, short};

pub enum Reporter {
    Quiet,
    Lines,
    Bars(RefCell<Option<ProgressBar>>),
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Reporter::Quiet,
            (false, true) => Reporter::Bars(RefCell::new(None)),
            (false, false) => Reporter::Lines,
        }
    }

    /// A status line (`pulling X`), unless quiet.
    pub fn say(&self, line: &str) {
        if !matches!(self, Reporter::Quiet) {
            eprintln!("{line}");
        }
    }
}

impl Progress for Reporter {
    fn start(&self, digest: &str, size: u64) {
        if let Reporter::Bars(bar) = self {
            let pb = ProgressBar::new(size);
            pb.set_style(
                ProgressStyle::with_template("  {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb.set_prefix(short(digest).to_string());
            *bar.borrow_mut() = Some(pb);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Reporter::Bars(bar) = self
            && let Some(pb) = bar.borrow().as_ref()
        {
            pb.inc(bytes);
        }
    }

    fn done(&self, digest: &str, size: u64, what: &str) {
        match self {
            Reporter::Quiet => {}
            Reporter::Lines => eprintln!("  {}: {what} ({size} bytes)", short(digest)),
            Reporter::Bars(bar) => {
                if let Some(pb) = bar.borrow_mut().take() {
                    pb.finish_and_clear();
                }
                eprintln!("  {}: {what} ({size} bytes)", short(digest));
            }
        }
    }
}
