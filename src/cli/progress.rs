//! How long CLI work shows how far it is: a bar redrawn in place on a terminal, plain
//! lines (at each tenth) when standard error is a file or a pipe.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// Reports `(what, done, total)` steps on standard error.
pub struct Reporter {
    terminal: bool,
    /// The step last shown, and the tenth last printed (plain lines).
    last: Mutex<(String, usize)>,
}

impl Reporter {
    /// A reporter for standard error.
    pub fn stderr() -> Reporter {
        Reporter { terminal: std::io::stderr().is_terminal(), last: Mutex::new((String::new(), usize::MAX)) }
    }

    /// Shows that `done` of `total` units of `what` are done.
    pub fn report(&self, what: &str, done: usize, total: usize) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let line = render(what, done, total, self.terminal);
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{line}\x1b[K");
            if done >= total {
                let _ = writeln!(err);
            }
        } else if last.0 != what || last.1 != tenth {
            let _ = writeln!(err, "{line}");
        }
        *last = (what.to_string(), tenth);
    }
}

/// One progress line: `what 120/300 (40%)`, with a bar on a terminal.
fn render(what: &str, done: usize, total: usize, bar: bool) -> String {
    let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
    if bar {
        let filled = pct / 5;
        format!("{what} [{}{}] {done}/{total} ({pct}%)", "#".repeat(filled), ".".repeat(20 - filled))
    } else {
        format!("{what} {done}/{total} ({pct}%)")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn lines_and_bars() {
        assert_eq!(render("indexing", 120, 300, false), "indexing 120/300 (40%)");
        assert_eq!(render("indexing", 150, 300, true), "indexing [##########..........] 150/300 (50%)");
        assert_eq!(render("queries", 0, 0, false), "queries 0/0 (100%)");
    }
}
