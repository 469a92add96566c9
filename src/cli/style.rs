//! Terminal colour: `--color auto|always|never`. `auto` colours only a terminal and honours
//! `NO_COLOR`/`CLICOLOR_FORCE` (through anstream's detection), so piped output stays plain.

use anstyle::{AnsiColor, Style};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ColorArgs {
    /// Colour the output: auto (only on a terminal), always, never.
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorWhen,
}

/// Applies styles, or nothing when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    pub on: bool,
}

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
pub const INFO: Style = AnsiColor::Cyan.on_default();
pub const ALLOWED: Style = AnsiColor::Green.on_default().bold();
pub const DENIED: Style = AnsiColor::Red.on_default().bold();
pub const NAME: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

impl Painter {
    pub fn new(when: ColorWhen) -> Painter {
        let on = match when {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
            }
        };
        Painter { on }
    }

    pub fn plain() -> Painter {
        Painter { on: false }
    }

    pub fn paint(&self, style: Style, s: &str) -> String {
        if self.on {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }
}
