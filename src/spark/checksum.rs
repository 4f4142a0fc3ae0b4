//! Parsing the `.sha512` files Apache publishes beside each release, in both layouts:
//! one line `<128 hex>  <file>` (recent releases) and the older gpg `--print-md` layout
//! (`file: 2C3A7E5B ...`, upper case, grouped, wrapped over lines) used up to 3.2.1.

/// Extracts the SHA-512 for `file_name` from a `.sha512` file's text, lower-cased.
pub fn parse_sha512(text: &str, file_name: &str) -> Result<String, String> {
    // One-line layout: the first 128-hex word on a line that names the file (or the only line).
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let Some(first) = words.next() {
            let rest: Vec<&str> = words.collect();
            let names_file = rest.is_empty()
                || rest
                    .iter()
                    .any(|w| w.trim_start_matches('*').ends_with(file_name));
            if first.len() == 128 && first.bytes().all(|b| b.is_ascii_hexdigit()) && names_file {
                return Ok(first.to_ascii_lowercase());
            }
        }
    }
    // gpg layout: "name: HEX HEX ..." possibly wrapped; collect hex after the colon.
    if let Some((name, digest)) = text.split_once(':') {
        if name.trim().ends_with(file_name) || name.trim().is_empty() {
            let hex: String = digest.chars().filter(|c| !c.is_whitespace()).collect();
            if hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(hex.to_ascii_lowercase());
            }
        }
    }
    Err(format!(
        "no SHA-512 for {file_name} in the checksum file (neither the one-line nor the gpg layout); {}",
        first_line(text)
    ))
}

/// The file's first non-empty line for an error message: quoted with escapes (so control
/// characters cannot forge output) and cut at 160 characters.
fn first_line(text: &str) -> String {
    match text.lines().find(|l| !l.trim().is_empty()) {
        None => "the file is empty".to_string(),
        Some(line) => {
            let shown: String = line.chars().take(160).collect();
            let cut = if shown.len() < line.len() {
                " (cut)"
            } else {
                ""
            };
            format!("its first line: {shown:?}{cut}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "1c9c147bddfc7c12b2d83d25d41173c84ed0ca9314a9dbb6955cc59e0463324ecf83aa6766de979b34b776299c37826ae2a96b5b062a0ef3e927c5f3ad606c91";

    #[test]
    fn a_bad_file_is_quoted_in_the_error() {
        let err = parse_sha512("\nnot-a-hash  spark.tgz\u{1b}[2J\n", "spark.tgz").unwrap_err();
        assert!(
            err.ends_with("its first line: \"not-a-hash  spark.tgz\\u{1b}[2J\""),
            "{err}"
        );
        let err = parse_sha512(" \n", "spark.tgz").unwrap_err();
        assert!(err.ends_with("the file is empty"), "{err}");
        let long = "x".repeat(500);
        let err = parse_sha512(&long, "spark.tgz").unwrap_err();
        assert!(err.ends_with("(cut)") && err.len() < 400, "{err}");
    }

    #[test]
    fn one_line_layout() {
        let text = format!("{HEX}  spark-3.5.7-bin-hadoop3.tgz\n");
        assert_eq!(
            parse_sha512(&text, "spark-3.5.7-bin-hadoop3.tgz").expect("parses"),
            HEX
        );
    }

    #[test]
    fn gpg_layout_wrapped_and_upper_case() {
        // As published for spark-3.1.2-bin-hadoop3.2.tgz.sha512.
        let upper = HEX.to_ascii_uppercase();
        let groups: Vec<String> = upper
            .as_bytes()
            .chunks(8)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let text = format!(
            "spark-3.1.2-bin-hadoop3.2.tgz: {}\n                               {}\n                               {}\n",
            groups[..6].join(" "),
            groups[6..12].join(" "),
            groups[12..].join(" ")
        );
        assert_eq!(
            parse_sha512(&text, "spark-3.1.2-bin-hadoop3.2.tgz").expect("parses"),
            HEX
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_sha512("<html>not found</html>", "x.tgz").is_err());
        assert!(parse_sha512(&format!("{HEX}  other.tgz\n"), "x.tgz").is_err());
    }
}
