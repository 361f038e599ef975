//! Caps on how many source bytes one export may read, so a small request cannot make
//! hearth load and render far more than it sent (a 5 KB batch naming one stored 2 MB
//! document a hundred times).
//!
//! A source's size is the length of its JSON form (what the source store keeps for a
//! stored transcript or document, and what an inline source serialises to), counted
//! without building the text. Each source may have at most `export.jobs.max_source_bytes`
//! and a batch at most `export.jobs.max_batch_source_bytes` in total. The request is
//! checked when it is accepted (413 naming the field), and the job checks again before
//! rendering each source, because a stored source may have been replaced by a larger one
//! in between.

use super::config::ExportJobsConfig;
use super::error::ExportError;
use super::model::Source;

/// The size of `source` in bytes: the length of its JSON form.
pub fn source_bytes(source: &Source) -> u64 {
    /// Counts what is written; stores nothing.
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let written = match source {
        Source::Transcript(t) => serde_json::to_writer(&mut count, t),
        Source::Document(d) => serde_json::to_writer(&mut count, d),
    };
    // Serialising plain model types into a counter cannot fail; count what was written.
    debug_assert!(written.is_ok());
    count.0
}

/// The source bytes one export has used so far, against its caps.
#[derive(Debug, Clone)]
pub struct SourceBudget {
    max_source: u64,
    max_total: u64,
    used: u64,
}

impl SourceBudget {
    /// The budget of one export: a batch has the batch total, a single export only the
    /// per-source cap.
    pub fn new(config: &ExportJobsConfig, batch: bool) -> Self {
        let max_total = if batch { config.max_batch_source_bytes } else { config.max_source_bytes };
        SourceBudget { max_source: config.max_source_bytes, max_total, used: 0 }
    }

    /// Counts `source` (named `field` in the request, e.g. `batch[3].source_id`) against
    /// the caps; 413 naming `field` when it alone is over the per-source cap, naming
    /// `batch` when it takes the batch over its total.
    pub fn take(&mut self, field: &str, source: &Source) -> Result<(), ExportError> {
        let n = source_bytes(source);
        if n > self.max_source {
            return Err(ExportError::SourceTooLarge {
                field: field.to_string(),
                message: format!("the source is {n} bytes, more than export.jobs.max_source_bytes ({})", self.max_source),
            });
        }
        self.used = self.used.saturating_add(n);
        if self.used > self.max_total {
            return Err(ExportError::SourceTooLarge {
                field: "batch".into(),
                message: format!(
                    "the sources up to {field} are {} bytes, more than export.jobs.max_batch_source_bytes ({})",
                    self.used, self.max_total
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::model::Document;

    fn doc(len: usize) -> Source {
        Source::Document(Document { id: "d".into(), title: String::new(), content: "x".repeat(len), metadata: Default::default() })
    }

    #[test]
    fn size_is_the_json_length() {
        let d = doc(10);
        let Source::Document(inner) = &d else { unreachable!() };
        assert_eq!(source_bytes(&d), serde_json::to_string(inner).unwrap().len() as u64);
    }

    #[test]
    fn budgets_name_the_source_or_the_batch() {
        let cfg = ExportJobsConfig { max_source_bytes: 1000, max_batch_source_bytes: 2500, ..Default::default() };
        let mut single = SourceBudget::new(&cfg, false);
        let e = single.take("source_id", &doc(2000)).unwrap_err();
        assert!(matches!(&e, ExportError::SourceTooLarge { field, .. } if field == "source_id"), "{e}");
        let mut batch = SourceBudget::new(&cfg, true);
        for i in 0..3 {
            batch.take(&format!("batch[{i}].source_id"), &doc(700)).unwrap();
        }
        let e = batch.take("batch[3].source_id", &doc(700)).unwrap_err();
        assert!(matches!(&e, ExportError::SourceTooLarge { field, .. } if field == "batch"), "{e}");
    }
}
