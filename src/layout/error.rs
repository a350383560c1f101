//! Layout errors: each names the layout (its file, or "inline layout"), the line and the field.

use std::fmt;

/// Where in a layout's text something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file's path, `layouts/NAME.toml` for a built-in, or `inline layout`.
    pub origin: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field's path, e.g. `regions[1].select`; empty for the whole document.
    pub field: String,
}

impl Location {
    /// The location of byte `offset` of `text` (its line) for `field`.
    pub(crate) fn at(origin: &str, text: &str, offset: Option<usize>, field: impl Into<String>) -> Location {
        let line = offset.map(|offset| line_of(text, offset));
        Location { origin: origin.to_owned(), line, field: field.into() }
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ", field `{}`", self.field)?;
        }
        Ok(())
    }
}

/// A layout that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// No built-in layout has this name (and it is no file either).
    #[error("unknown layout `{name}` (built-in layouts: {known})")]
    Unknown { name: String, known: String },
    /// The layout file could not be read.
    #[error("layout file `{path}`: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The layout file is larger than a layout can be.
    #[error("layout file `{path}` is larger than {limit_bytes} bytes")]
    TooLarge { path: String, limit_bytes: u64 },
    /// Not TOML, or not the layout format (unknown field, wrong type, missing field).
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },
    /// A field's value is out of range or does not fit with the others.
    #[error("{at}: invalid value `{value}`: {reason}")]
    Invalid { at: Location, value: String, reason: String },
    /// Following `fallback` layouts comes back to one already on the way.
    #[error("{at}: fallback cycle {cycle}")]
    FallbackCycle { at: Location, cycle: String },
    /// A layout timeline with two entries at the same time.
    #[error("layout timeline: two layouts at {at_ms} ms")]
    DuplicateTime { at_ms: u64 },
}
