//! The layout file format (TOML) and its validation. Every error names the layout, the line
//! and the field (`regions[1].select`): serde errors through `serde_path_to_error` and the
//! TOML error's span, checks after parsing through `toml::Spanned` fields.

use std::fmt::Display;
use std::ops::{Range, RangeInclusive};
use std::path::Path;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::error::{LayoutError, Location};
use super::{
    Arrange, BUILTIN_NAMES, Fit, INLINE_ORIGIN, Layout, LayoutImage, MAX_REGION_PARTICIPANTS, Orientation, Region, Rgb,
    Selector, TileSpec, WhenEmpty, builtin_text,
};

/// The longest `transition_ms`.
const MAX_TRANSITION_MS: i64 = 10_000;

/// A number written as an integer or a float.
#[derive(Debug, Clone, Copy)]
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Number, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    name: Spanned<String>,
    background: Spanned<String>,
    background_image: Option<Spanned<String>>,
    transition_ms: Option<Spanned<i64>>,
    tile: Option<TileFile>,
    regions: Spanned<Vec<RegionFile>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TileFile {
    corner_radius: Option<Spanned<Number>>,
    border: Option<Spanned<Number>>,
    border_color: Option<Spanned<String>>,
    highlight: Option<Spanned<String>>,
    highlight_width: Option<Spanned<Number>>,
    label: Option<bool>,
    label_size: Option<Spanned<Number>>,
    placeholder: Option<Spanned<String>>,
    avatar: Option<bool>,
    video: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SelectName {
    All,
    Screenshare,
    ActiveSpeaker,
    Others,
    Pinned,
    Id,
    Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WhenEmptyName {
    Hide,
    Fallback,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    name: Spanned<String>,
    x: Spanned<Number>,
    y: Spanned<Number>,
    width: Spanned<Number>,
    height: Spanned<Number>,
    orientation: Option<Orientation>,
    select: Spanned<SelectName>,
    ids: Option<Spanned<Vec<String>>>,
    role: Option<Spanned<String>>,
    arrange: Arrange,
    fit: Option<Fit>,
    gap: Option<Spanned<Number>>,
    z: Option<i32>,
    max_participants: Option<Spanned<i64>>,
    when_empty: Option<Spanned<WhenEmptyName>>,
    fallback: Option<Spanned<String>>,
    /// Shorthand for `[regions.tile] placeholder` (the format before `[tile]` existed).
    placeholder: Option<Spanned<String>>,
    tile: Option<TileFile>,
}

/// Parses and validates `text`. `stack` holds the layouts whose fallbacks led here (cycles).
pub(crate) fn parse(origin: &str, text: &str, stack: &mut Vec<String>) -> Result<Layout, LayoutError> {
    let file = deserialize(origin, text)?;
    let check = Check { origin, text };
    let name = file.name.get_ref().trim().to_owned();
    if name.is_empty() || name.len() > 100 {
        return Err(check.invalid(file.name.span(), "name", file.name.get_ref(), "1 to 100 characters"));
    }
    let background = check.colour(&file.background, "background")?;
    let background_image = match &file.background_image {
        None => None,
        Some(name) => Some(check.image(name, "background_image")?),
    };
    let transition_ms = match &file.transition_ms {
        None => 300,
        Some(ms) => {
            u32::try_from(*ms.get_ref()).ok().filter(|&v| i64::from(v) <= MAX_TRANSITION_MS).ok_or_else(|| {
                check.invalid(
                    ms.span(),
                    "transition_ms",
                    ms.get_ref(),
                    format!("must be within 0..={MAX_TRANSITION_MS}"),
                )
            })?
        }
    };
    let tile = check.tile(TileSpec::default(), file.tile.as_ref(), "tile")?;
    if file.regions.get_ref().is_empty() {
        return Err(check.invalid(file.regions.span(), "regions", "[]", "a layout needs at least one region"));
    }
    for (orientation, size) in [(Orientation::Landscape, (16, 9)), (Orientation::Portrait, (9, 16))] {
        if !file.regions.get_ref().iter().any(|r| r.orientation.unwrap_or_default().applies(size.0, size.1)) {
            let reason = format!("no region applies to {orientation:?} canvases").to_lowercase();
            return Err(check.invalid(file.regions.span(), "regions", "…", reason));
        }
    }
    stack.push(name.clone());
    let mut regions = Vec::with_capacity(file.regions.get_ref().len());
    for (i, region) in file.regions.get_ref().iter().enumerate() {
        regions.push(check.region(region, &format!("regions[{i}]"), &tile, stack)?);
    }
    stack.pop();
    Ok(Layout { name, background, background_image, transition_ms, tile, regions })
}

fn deserialize(origin: &str, text: &str) -> Result<LayoutFile, LayoutError> {
    let syntax = |field: String, err: toml::de::Error| {
        let at = Location::at(origin, text, err.span().map(|s| s.start), field);
        LayoutError::Syntax { at, message: err.message().trim().to_owned() }
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|err| syntax(String::new(), err))?;
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let field = field_path(err.path());
        syntax(field, err.into_inner())
    })
}

/// `regions[1].select` from serde's path, without the keys `toml::Spanned` uses inside.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } if !key.starts_with("$__") => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            _ => {}
        }
    }
    out
}

/// Validation with the layout's origin and text at hand, for locations.
struct Check<'t> {
    origin: &'t str,
    text: &'t str,
}

impl Check<'_> {
    fn invalid(&self, span: Range<usize>, field: &str, value: impl Display, reason: impl Into<String>) -> LayoutError {
        LayoutError::Invalid {
            at: Location::at(self.origin, self.text, Some(span.start), field),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The PNG a layout file names, relative to the file's directory. Only layout files on
    /// the node may name files: an inline layout (a job's) cannot reach into the node's disk.
    fn image(&self, value: &Spanned<String>, field: &str) -> Result<LayoutImage, LayoutError> {
        let name = value.get_ref();
        if self.origin == INLINE_ORIGIN {
            let reason = "an inline layout cannot name a file: put the layout and its picture on the node";
            return Err(self.invalid(value.span(), field, name, reason));
        }
        let base = Path::new(self.origin).parent().unwrap_or(Path::new(""));
        LayoutImage::read_png(&base.join(name)).map_err(|reason| self.invalid(value.span(), field, name, reason))
    }

    fn colour(&self, value: &Spanned<String>, field: &str) -> Result<Rgb, LayoutError> {
        Rgb::parse(value.get_ref())
            .ok_or_else(|| self.invalid(value.span(), field, value.get_ref(), "expected #RRGGBB"))
    }

    fn number(&self, value: &Spanned<Number>, field: &str, range: RangeInclusive<f64>) -> Result<f32, LayoutError> {
        let v = value.get_ref().0;
        if range.contains(&v) {
            Ok(v as f32)
        } else {
            let reason = format!("must be within {}..={}", range.start(), range.end());
            Err(self.invalid(value.span(), field, v, reason))
        }
    }

    /// `base` with the settings of `file` applied; fields are named under `prefix`.
    fn tile(&self, base: TileSpec, file: Option<&TileFile>, prefix: &str) -> Result<TileSpec, LayoutError> {
        let Some(file) = file else { return Ok(base) };
        let field = |name: &str| format!("{prefix}.{name}");
        let mut spec = base;
        if let Some(v) = &file.corner_radius {
            spec.corner_radius = self.number(v, &field("corner_radius"), 0.0..=0.5)?;
        }
        if let Some(v) = &file.border {
            spec.border = self.number(v, &field("border"), 0.0..=0.1)?;
        }
        if let Some(v) = &file.border_color {
            spec.border_color = self.colour(v, &field("border_color"))?;
        }
        if let Some(v) = &file.highlight {
            spec.highlight = if v.get_ref() == "none" { None } else { Some(self.colour(v, &field("highlight"))?) };
        }
        if let Some(v) = &file.highlight_width {
            spec.highlight_width = self.number(v, &field("highlight_width"), 0.0..=0.1)?;
        }
        if let Some(v) = &file.label_size {
            spec.label_size = self.number(v, &field("label_size"), 0.001..=0.25)?;
        }
        if let Some(v) = &file.placeholder {
            spec.placeholder = self.colour(v, &field("placeholder"))?;
        }
        spec.label = file.label.unwrap_or(spec.label);
        spec.avatar = file.avatar.unwrap_or(spec.avatar);
        spec.video = file.video.unwrap_or(spec.video);
        Ok(spec)
    }

    fn region(
        &self,
        r: &RegionFile,
        prefix: &str,
        tile: &TileSpec,
        stack: &mut Vec<String>,
    ) -> Result<Region, LayoutError> {
        let field = |name: &str| format!("{prefix}.{name}");
        let name = r.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(self.invalid(r.name.span(), &field("name"), "", "a region needs a name"));
        }
        let x = self.number(&r.x, &field("x"), 0.0..=1.0)?;
        let y = self.number(&r.y, &field("y"), 0.0..=1.0)?;
        let width = self.number(&r.width, &field("width"), 0.0..=1.0)?;
        let height = self.number(&r.height, &field("height"), 0.0..=1.0)?;
        for (value, start, size, label) in [(&r.width, x, width, "x + width"), (&r.height, y, height, "y + height")] {
            if size <= 0.0 || start + size > 1.0001 {
                let reason = format!("the region must be non-empty and end inside the canvas ({label} <= 1)");
                let which = if label.starts_with('x') { "width" } else { "height" };
                return Err(self.invalid(value.span(), &field(which), size, reason));
            }
        }
        let gap = match &r.gap {
            Some(v) => self.number(v, &field("gap"), 0.0..=0.2)?,
            None => 0.0,
        };
        let max_participants = match &r.max_participants {
            None => MAX_REGION_PARTICIPANTS,
            Some(v) => usize::try_from(*v.get_ref())
                .ok()
                .filter(|n| (1..=MAX_REGION_PARTICIPANTS).contains(n))
                .ok_or_else(|| {
                    let reason = format!("must be within 1..={MAX_REGION_PARTICIPANTS}");
                    self.invalid(v.span(), &field("max_participants"), v.get_ref(), reason)
                })?,
        };
        let select = self.selector(r, &field)?;
        let when_empty = self.when_empty(r, &field, stack)?;
        let mut base = *tile;
        if let Some(v) = &r.placeholder {
            base.placeholder = self.colour(v, &field("placeholder"))?;
        }
        let tile = self.tile(base, r.tile.as_ref(), &field("tile"))?;
        Ok(Region {
            name,
            x,
            y,
            width,
            height,
            orientation: r.orientation.unwrap_or_default(),
            select,
            arrange: r.arrange,
            fit: r.fit.unwrap_or(Fit::Contain),
            gap,
            z: r.z.unwrap_or(0),
            max_participants,
            when_empty,
            tile,
        })
    }

    fn selector(&self, r: &RegionFile, field: &dyn Fn(&str) -> String) -> Result<Selector, LayoutError> {
        let select = *r.select.get_ref();
        if let Some(ids) = r.ids.as_ref().filter(|_| select != SelectName::Id) {
            let list = format!("{:?}", ids.get_ref());
            return Err(self.invalid(ids.span(), &field("ids"), list, "`ids` goes with select = \"id\" only"));
        }
        if let Some(role) = r.role.as_ref().filter(|_| select != SelectName::Role) {
            return Err(self.invalid(
                role.span(),
                &field("role"),
                role.get_ref(),
                "`role` goes with select = \"role\" only",
            ));
        }
        Ok(match select {
            SelectName::All => Selector::All,
            SelectName::Screenshare => Selector::Screenshare,
            SelectName::ActiveSpeaker => Selector::ActiveSpeaker,
            SelectName::Others => Selector::Others,
            SelectName::Pinned => Selector::Pinned,
            SelectName::Id => {
                let Some(ids) = &r.ids else {
                    return Err(self.invalid(r.select.span(), &field("ids"), "", "select = \"id\" needs `ids`"));
                };
                let list = ids.get_ref();
                let mut seen = std::collections::BTreeSet::new();
                if list.is_empty() || list.iter().any(|id| id.is_empty() || !seen.insert(id.as_str())) {
                    let reason = "a non-empty list of distinct, non-empty participant ids";
                    return Err(self.invalid(ids.span(), &field("ids"), format!("{list:?}"), reason));
                }
                Selector::Ids(list.clone())
            }
            SelectName::Role => match &r.role {
                Some(role) if !role.get_ref().is_empty() => Selector::Role(role.get_ref().clone()),
                Some(role) => return Err(self.invalid(role.span(), &field("role"), "", "a role name")),
                None => {
                    return Err(self.invalid(r.select.span(), &field("role"), "", "select = \"role\" needs `role`"));
                }
            },
        })
    }

    fn when_empty(
        &self,
        r: &RegionFile,
        field: &dyn Fn(&str) -> String,
        stack: &mut Vec<String>,
    ) -> Result<WhenEmpty, LayoutError> {
        let mode = r.when_empty.as_ref().map_or(WhenEmptyName::Hide, |w| *w.get_ref());
        match (mode, &r.fallback) {
            (WhenEmptyName::Hide, None) => Ok(WhenEmpty::Hide),
            (WhenEmptyName::Hide, Some(fallback)) => Err(self.invalid(
                fallback.span(),
                &field("fallback"),
                fallback.get_ref(),
                "`fallback` goes with when_empty = \"fallback\" only",
            )),
            (WhenEmptyName::Fallback, None) => {
                let span = r.when_empty.as_ref().map_or(r.name.span(), |w| w.span());
                Err(self.invalid(
                    span,
                    &field("fallback"),
                    "",
                    "when_empty = \"fallback\" needs `fallback` (a built-in layout)",
                ))
            }
            (WhenEmptyName::Fallback, Some(fallback)) => {
                let target = fallback.get_ref();
                let at = || Location::at(self.origin, self.text, Some(fallback.span().start), field("fallback"));
                let Some(text) = builtin_text(target) else {
                    let reason = format!("not a built-in layout ({})", BUILTIN_NAMES.join(", "));
                    return Err(self.invalid(fallback.span(), &field("fallback"), target, reason));
                };
                if let Some(start) = stack.iter().position(|name| name == target) {
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(target.clone());
                    return Err(LayoutError::FallbackCycle { at: at(), cycle: cycle.join(" -> ") });
                }
                match parse(&format!("layouts/{target}.toml"), text, stack) {
                    Ok(layout) => Ok(WhenEmpty::Fallback(Box::new(layout))),
                    // The cycle is reported where the chain starts.
                    Err(LayoutError::FallbackCycle { cycle, .. }) => {
                        Err(LayoutError::FallbackCycle { at: at(), cycle })
                    }
                    Err(other) => Err(other),
                }
            }
        }
    }
}
