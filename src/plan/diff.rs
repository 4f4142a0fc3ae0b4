//! Unified diffs for `--diff`, with secrets redacted before anything is shown.

use similar::TextDiff;

/// Replaces known secret values with a placeholder wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

pub const REDACTED: &str = "<redacted by sparkboot>";

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        // Very short values would redact ordinary text; secrets sparkboot makes are long.
        Redactor {
            secrets: secrets.into_iter().filter(|s| s.len() >= 8).collect(),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

/// A unified diff of `old` (None when the file is new) to `new`, redacted.
pub fn unified(
    path: &str,
    old: Option<&str>,
    new: &str,
    secret: bool,
    redactor: &Redactor,
) -> String {
    if secret {
        return format!("--- {path}\n+++ {path}\n(secret content not shown)\n");
    }
    let old_text = old.unwrap_or("");
    let old_name = if old.is_some() {
        path.to_string()
    } else {
        "/dev/null".to_string()
    };
    let diff = TextDiff::from_lines(old_text, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&old_name, path)
        .to_string();
    redactor.redact(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_and_hides_secrets() {
        let r = Redactor::new(vec!["s3cr3t-value-123".into()]);
        let d = unified(
            "/etc/x",
            Some("a=1\nkey=old\n"),
            "a=1\nkey=s3cr3t-value-123\n",
            false,
            &r,
        );
        assert!(d.contains("-key=old"), "{d}");
        assert!(d.contains("+key=<redacted by sparkboot>"), "{d}");
        assert!(!d.contains("s3cr3t"));
    }

    #[test]
    fn secret_files_show_no_content() {
        let d = unified(
            "/etc/secret",
            None,
            "topsecret\n",
            true,
            &Redactor::default(),
        );
        assert!(!d.contains("topsecret"));
    }

    #[test]
    fn new_file_diffs_from_dev_null() {
        let d = unified("/etc/n", None, "x\n", false, &Redactor::default());
        assert!(d.starts_with("--- /dev/null\n+++ /etc/n"), "{d}");
    }
}
