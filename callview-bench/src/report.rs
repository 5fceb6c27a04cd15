//! What a scenario prints: tables, target checks, notes, and the same as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::machine::Machine;

/// A table of figures: a title, column headers and rows of cells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// What the table shows.
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these headers.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as aligned plain text.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let line = |cells: &[String], out: &mut String| {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width - cell.chars().count();
                if i == 0 {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                } else {
                    text.push_str("  ");
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                }
            }
            let _ = writeln!(out, "  {}", text.trim_end());
        };
        line(&self.headers, &mut out);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule, &mut out);
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "**{}**\n", self.title);
        let _ = writeln!(out, "| {} |", self.headers.join(" | "));
        let _ = writeln!(
            out,
            "|{}|",
            self.headers
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}

/// Whether a target was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The figure is within the target.
    Met,
    /// The figure misses the target.
    Missed,
    /// Not measured (the feature does not exist yet, or the store was not run).
    NotApplicable,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn from_bool(ok: bool) -> Self {
        if ok {
            Self::Met
        } else {
            Self::Missed
        }
    }

    /// `met`, `MISSED` or `n/a`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::NotApplicable => "n/a",
        }
    }
}

/// One target of the issue, its measured figure, and the verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetCheck {
    /// The target, e.g. `SQLite ingest calls/s`.
    pub name: String,
    /// What was measured, formatted.
    pub figure: String,
    /// The bound, formatted (`>= 100,000`).
    pub target: String,
    /// Met, missed or n/a.
    pub verdict: Verdict,
}

impl TargetCheck {
    /// A check.
    pub fn new(
        name: impl Into<String>,
        figure: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) -> Self {
        Self {
            name: name.into(),
            figure: figure.into(),
            target: target.into(),
            verdict,
        }
    }
}

/// Everything one scenario run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `ingest`, `memory`, `backfill`, `api`, `incremental` or `audio`.
    pub scenario: String,
    /// When the run finished (UTC, RFC 3339).
    pub date: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// Whether this was the tiny smoke version.
    pub smoke: bool,
    /// The figures.
    pub tables: Vec<Table>,
    /// The targets with their verdicts.
    pub targets: Vec<TargetCheck>,
    /// Caveats and context.
    pub notes: Vec<String>,
    /// The scenario's typed results.
    pub data: serde_json::Value,
}

impl Report {
    /// A report for `scenario`, dated now, on this machine.
    pub fn new(scenario: &str, smoke: bool) -> Self {
        Self {
            scenario: scenario.to_owned(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            machine: Machine::detect(),
            smoke,
            tables: Vec::new(),
            targets: Vec::new(),
            notes: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    /// The target checks as a table.
    pub fn targets_table(&self) -> Table {
        let mut table = Table::new(
            format!("Targets ({})", self.scenario),
            &["target", "figure", "bound", "verdict"],
        );
        for t in &self.targets {
            table.row(vec![
                t.name.clone(),
                t.figure.clone(),
                t.target.clone(),
                t.verdict.label().to_owned(),
            ]);
        }
        table
    }

    /// The whole report as plain text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "== callview-bench {}{} — {} — {}",
            self.scenario,
            if self.smoke { " (smoke)" } else { "" },
            self.date,
            self.machine.summary()
        );
        for table in &self.tables {
            let _ = writeln!(out, "\n{}", table.render());
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\n{}", self.targets_table().render());
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// The whole report in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### `{}`{} — {}\n\n{}\n",
            self.scenario,
            if self.smoke { " (smoke)" } else { "" },
            self.date,
            self.machine.summary()
        );
        for table in &self.tables {
            let _ = writeln!(out, "{}", table.markdown());
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "{}", self.targets_table().markdown());
        }
        for note in &self.notes {
            let _ = writeln!(out, "* {note}");
        }
        out
    }
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Milliseconds with a precision that suits the size.
pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{} ms", thousands(value))
    }
}

/// Seconds with two decimals.
pub fn secs(value: f64) -> String {
    format!("{value:.2} s")
}

/// Mebibytes with one decimal.
pub fn mib(value: f64) -> String {
    format!("{value:.1} MiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(ms(1.234), "1.23 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(1234.0), "1,234 ms");
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new("T", &["a", "bb"]);
        t.row(vec!["long".into(), "1".into()]);
        let text = t.render();
        assert!(text.contains("  a     bb"), "{text}");
        assert!(text.contains("  long   1"), "{text}");
        assert!(t.markdown().contains("| long | 1 |"));
    }
}
