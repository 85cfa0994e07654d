//! A line-oriented text builder: configuration files are lines, and comments explain them.

#[derive(Debug, Default)]
pub(crate) struct Out {
    text: String,
}

impl Out {
    pub(crate) fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// Each line of `text` prefixed with `marker` and a space (`!`, `#`, `#`).
    pub(crate) fn comment(&mut self, marker: &str, text: &str) {
        for line in text.lines() {
            if line.is_empty() {
                self.line(marker);
            } else {
                self.line(format!("{marker} {line}"));
            }
        }
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}
