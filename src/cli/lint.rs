//! `policyc lint PATH...`: checks policies for mistakes, with stable codes, severities and the
//! `file:line:col` of each finding; text, JSON, SARIF or GitHub annotations out.
//!
//! Exit codes: 0 no finding at or above `--fail-on`, 1 some, 2 usage or input error.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::ValueEnum;
use policyc_compiler::lint::{self, report, Config, Severity, CHECKS};
use policyc_compiler::load::load_texts;
use policyc_compiler::spans::Spans;

use super::style::{self, ColorArgs, Painter};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Sarif,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    /// Never fail because of findings (exit 0 unless the input cannot be read).
    None,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories to lint (YAML/JSON, directories read recursively).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// More files or directories, as for the other commands.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Exit 1 when a finding has at least this severity.
    #[arg(long = "fail-on", value_enum, default_value = "error")]
    pub fail_on: FailOn,
    /// Do not run the check CODE (repeatable).
    #[arg(long, value_name = "CODE")]
    pub disable: Vec<String>,
    /// Run the opt-in check CODE (repeatable).
    #[arg(long, value_name = "CODE")]
    pub enable: Vec<String>,
    /// Run every check, opt-in ones included.
    #[arg(long)]
    pub all: bool,
    /// Print the long explanation of CODE and exit.
    #[arg(long, value_name = "CODE")]
    pub explain: Option<String>,
    /// List every check (code, severity, description) and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub color: ColorArgs,
    #[command(flatten)]
    pub live: crate::live::LiveArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(code) = &args.explain {
        let check =
            lint::find(code).with_context(|| format!("no check has the code {code:?} (see --list)"))?;
        println!(
            "{} ({}{})",
            check.code,
            check.severity,
            if check.default_enabled { "" } else { ", opt-in" }
        );
        println!("{}\n", check.description);
        println!("{}", wrap(check.explanation, 88));
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        let width = CHECKS.iter().map(|c| c.code.len()).max().unwrap_or(0);
        for c in CHECKS {
            let opt = if c.default_enabled { "" } else { " (opt-in)" };
            println!(
                "{:width$}  {:7}  {}{opt}",
                c.code,
                c.severity.as_str(),
                c.description
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config {
        all: args.all,
        enable: args.enable.iter().cloned().collect::<BTreeSet<_>>(),
        disable: args.disable.iter().cloned().collect::<BTreeSet<_>>(),
    };
    let unknown = config.unknown_codes();
    if !unknown.is_empty() {
        bail!(
            "unknown check code(s): {} (see policyc lint --list)",
            unknown.join(", ")
        );
    }
    let paths: Vec<PathBuf> = args.paths.iter().chain(&args.files).cloned().collect();
    if paths.is_empty() && !args.live.enabled() {
        bail!("nothing to lint: pass files or directories (policyc lint PATH...), or --cluster");
    }
    let texts = crate::input::read_texts(&paths)?;
    let mut spans = Spans::new();
    for (name, text) in &texts {
        spans.add_file(name, text);
    }
    let (mut cluster, mut objects, mut diagnostics) =
        load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    if args.live.enabled() {
        let live = crate::live::fetch_blocking(&args.live, &objects)?;
        let loaded = crate::live::loaded_from(live, diagnostics);
        (cluster, objects, diagnostics) = (loaded.cluster, loaded.objects, loaded.diagnostics);
    }
    let findings = lint::lint(
        &lint::Input {
            cluster: &cluster,
            objects: &objects,
            diagnostics: &diagnostics,
            spans: Some(&spans),
        },
        &config,
    );
    let painter = Painter::new(args.color.color);
    let out = match args.format {
        Format::Text => report::text(&findings, &|s, t| paint_severity(painter, s, t)),
        Format::Json => report::json(&findings) + "\n",
        Format::Sarif => report::sarif(&findings, env!("CARGO_PKG_VERSION")) + "\n",
        Format::Github => report::github(&findings),
    };
    print!("{out}");
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::None => None,
    };
    let failed = threshold.is_some_and(|t| findings.iter().any(|f| f.severity >= t));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn paint_severity(p: Painter, s: Severity, text: &str) -> String {
    let st = match s {
        Severity::Error => style::ERROR,
        Severity::Warning => style::WARNING,
        Severity::Info => style::INFO,
    };
    p.paint(st, text)
}

/// Wraps prose at `width` columns for `--explain`.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}
