//! One row per figure, printed as a table or as a JSON array.

use std::fmt::Write as _;

/// One measured figure: ours beside OpenSSL's, where OpenSSL has a counterpart.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) unit: &'static str,
    pub(crate) ours: f64,
    pub(crate) openssl: Option<f64>,
}

impl Row {
    pub(crate) fn new(figure: impl Into<String>, unit: &'static str, ours: f64, openssl: Option<f64>) -> Self {
        Self { figure: figure.into(), unit, ours, openssl }
    }

    /// Ours divided by OpenSSL's.
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.openssl.filter(|o| *o != 0.0).map(|o| self.ours / o)
    }
}

fn number(v: f64) -> String {
    if v.is_finite() {
        // Three significant decimals are plenty for these figures.
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        "null".to_owned()
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The rows as one JSON array of `{figure, unit, ours, openssl, ratio}` objects.
pub(crate) fn json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let opt = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), number);
        let _ = write!(
            out,
            "  {{\"figure\": {}, \"unit\": {}, \"ours\": {}, \"openssl\": {}, \"ratio\": {}}}",
            json_string(&r.figure),
            json_string(r.unit),
            number(r.ours),
            opt(r.openssl),
            opt(r.ratio()),
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push(']');
    out
}

fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The rows as an aligned text table.
pub(crate) fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.unit.to_owned(),
                human(r.ours),
                r.openssl.map_or_else(|| "-".to_owned(), human),
                r.ratio().map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x")),
            ]
        })
        .collect();
    let head = ["figure", "unit", "ours", "openssl", "ours/openssl"];
    let mut width = head.map(str::len);
    for c in &cells {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: [&str; 5]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4]
        );
    };
    line(&mut out, head);
    for c in &cells {
        line(&mut out, [&c[0], &c[1], &c[2], &c[3], &c[4]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_field_and_nulls() {
        let rows = vec![
            Row::new("handshake \"psk\"", "us", 10.0, Some(40.0)),
            Row::new("raw udp", "records/s", 380_000.0, None),
        ];
        assert_eq!(
            json(&rows),
            "[\n  {\"figure\": \"handshake \\\"psk\\\"\", \"unit\": \"us\", \"ours\": 10, \"openssl\": 40, \"ratio\": 0.25},\n  \
             {\"figure\": \"raw udp\", \"unit\": \"records/s\", \"ours\": 380000, \"openssl\": null, \"ratio\": null}\n]"
        );
    }

    #[test]
    fn table_aligns_and_shows_ratio() {
        let t = table(&[Row::new("a", "us", 1.5, Some(3.0)), Row::new("longer figure", "B", 2048.0, None)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].ends_with("0.50x"), "{t}");
        assert!(lines[2].ends_with('-'), "{t}");
        assert_eq!(lines[0].len(), lines[1].len());
    }
}
