//! Layouts as data (`layouts/*.toml`) and the pure geometry engine that turns
//! (layout, participants visible at time t, canvas size) into tiles. No GPU here.

mod grid;
mod scene;

use serde::Deserialize;

pub use grid::{GridShape, grid_shape};
pub use scene::{OnStage, Scene, display_order};

/// Built-in layouts, compiled in from `layouts/`.
const BUILTIN: &[(&str, &str)] = &[("grid", include_str!("../../layouts/grid.toml"))];

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("unknown layout `{name}` (built-in layouts: {known})")]
    Unknown { name: String, known: String },
    #[error("layout `{name}`: {source}")]
    Parse {
        name: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("layout `{name}`: field `{field}` has invalid value `{value}`: {reason}")]
    Invalid { name: String, field: String, value: String, reason: &'static str },
}

/// An RGB colour written as `#RRGGBB` in layout files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Rgb([channel(0)?, channel(2)?, channel(4)?]))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Every participant visible at that moment.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrange {
    Grid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// The whole frame is shown, letterboxed inside its cell.
    Contain,
    /// The cell is filled; the frame is cropped.
    Cover,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    name: String,
    x: f32,
    y: f32,
    width: f32,
    height: f32,
    select: Selector,
    arrange: Arrange,
    fit: Fit,
    #[serde(default)]
    gap: f32,
    #[serde(default = "default_max_participants")]
    max_participants: usize,
    #[serde(default = "default_placeholder")]
    placeholder: String,
}

fn default_max_participants() -> usize {
    25
}

fn default_placeholder() -> String {
    "#2a2f36".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    name: String,
    background: String,
    regions: Vec<RegionFile>,
}

/// A region of the canvas, in normalised coordinates (0..1 of width and height).
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub select: Selector,
    pub arrange: Arrange,
    pub fit: Fit,
    pub gap: f32,
    pub max_participants: usize,
    pub placeholder: Rgb,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub name: String,
    pub background: Rgb,
    pub regions: Vec<Region>,
}

impl Layout {
    /// Loads a built-in layout by name.
    pub fn builtin(name: &str) -> Result<Layout, LayoutError> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| LayoutError::Unknown {
            name: name.to_owned(),
            known: BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        })?;
        Layout::parse(name, text)
    }

    /// Parses and validates a layout file's text.
    pub fn parse(name: &str, text: &str) -> Result<Layout, LayoutError> {
        let file: LayoutFile =
            toml::from_str(text).map_err(|source| LayoutError::Parse { name: name.to_owned(), source })?;
        let invalid =
            |field: String, value: String, reason| LayoutError::Invalid { name: name.to_owned(), field, value, reason };
        let background = Rgb::parse(&file.background)
            .ok_or_else(|| invalid("background".into(), file.background.clone(), "expected #RRGGBB"))?;
        if file.regions.is_empty() {
            return Err(invalid("regions".into(), "[]".into(), "a layout needs at least one region"));
        }
        let mut regions = Vec::with_capacity(file.regions.len());
        for (i, r) in file.regions.into_iter().enumerate() {
            let field = |f: &str| format!("regions[{i}].{f}");
            for (f, v) in [("x", r.x), ("y", r.y), ("width", r.width), ("height", r.height)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(field(f), v.to_string(), "must be within 0..1"));
                }
            }
            if r.width <= 0.0 || r.height <= 0.0 || r.x + r.width > 1.0001 || r.y + r.height > 1.0001 {
                return Err(invalid(
                    field("width"),
                    format!("{}x{} at {},{}", r.width, r.height, r.x, r.y),
                    "region must be non-empty and inside the canvas",
                ));
            }
            if !(0.0..0.25).contains(&r.gap) {
                return Err(invalid(field("gap"), r.gap.to_string(), "must be within 0..0.25"));
            }
            if r.max_participants == 0 {
                return Err(invalid(field("max_participants"), "0".into(), "must be at least 1"));
            }
            let placeholder = Rgb::parse(&r.placeholder)
                .ok_or_else(|| invalid(field("placeholder"), r.placeholder.clone(), "expected #RRGGBB"))?;
            regions.push(Region {
                name: r.name,
                x: r.x,
                y: r.y,
                width: r.width,
                height: r.height,
                select: r.select,
                arrange: r.arrange,
                fit: r.fit,
                gap: r.gap,
                max_participants: r.max_participants,
                placeholder,
            });
        }
        Ok(Layout { name: file.name, background, regions })
    }

    /// Places participants already in display order on a canvas of `canvas_width` x
    /// `canvas_height` pixels (the geometry under [`Layout::arrange`]); each entry carries the size of the participant's
    /// current video frame, or `None` when it has no video at that moment (placeholder tile).
    pub fn place(&self, participants: &[Option<(u32, u32)>], canvas_width: u32, canvas_height: u32) -> Vec<Tile> {
        let mut tiles = Vec::new();
        for region in &self.regions {
            let take = participants.len().min(region.max_participants);
            let area = RectF {
                x: region.x * canvas_width as f32,
                y: region.y * canvas_height as f32,
                width: region.width * canvas_width as f32,
                height: region.height * canvas_height as f32,
            };
            let gap_px = region.gap * canvas_height as f32;
            let cells = match region.arrange {
                Arrange::Grid => grid::cells(area, take, gap_px),
            };
            for (index, (cell, video)) in cells.into_iter().zip(participants).enumerate() {
                let content = match video {
                    Some((w, h)) => fit_frame(cell, *w, *h, region.fit),
                    None => TileContent::Placeholder(region.placeholder),
                };
                tiles.push(Tile { participant_index: index, cell, content });
            }
        }
        tiles
    }
}

/// A rectangle in pixels, top-left origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RectF {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl RectF {
    pub fn center(&self) -> (f32, f32) {
        (self.x + self.width / 2.0, self.y + self.height / 2.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TileContent {
    /// Draw the participant's frame into `rect`, showing the part `uv_rect` (x0, y0, x1, y1
    /// normalised) of it.
    Video { rect: RectF, uv_rect: [f32; 4] },
    /// The participant is present but has no video: fill the cell.
    Placeholder(Rgb),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Index into the participants given to [`Layout::place`].
    pub participant_index: usize,
    /// The cell the participant owns.
    pub cell: RectF,
    pub content: TileContent,
}

/// Fits a `frame_width` x `frame_height` frame into `cell`, keeping its aspect ratio.
pub fn fit_frame(cell: RectF, frame_width: u32, frame_height: u32, fit: Fit) -> TileContent {
    let full = [0.0, 0.0, 1.0, 1.0];
    if frame_width == 0 || frame_height == 0 || cell.width <= 0.0 || cell.height <= 0.0 {
        return TileContent::Video { rect: cell, uv_rect: full };
    }
    let frame_aspect = frame_width as f32 / frame_height as f32;
    let cell_aspect = cell.width / cell.height;
    match fit {
        Fit::Contain => {
            let (w, h) = if frame_aspect > cell_aspect {
                (cell.width, cell.width / frame_aspect)
            } else {
                (cell.height * frame_aspect, cell.height)
            };
            let rect =
                RectF { x: cell.x + (cell.width - w) / 2.0, y: cell.y + (cell.height - h) / 2.0, width: w, height: h };
            TileContent::Video { rect, uv_rect: full }
        }
        Fit::Cover => {
            let uv_rect = if frame_aspect > cell_aspect {
                let visible = cell_aspect / frame_aspect;
                [(1.0 - visible) / 2.0, 0.0, (1.0 + visible) / 2.0, 1.0]
            } else {
                let visible = frame_aspect / cell_aspect;
                [0.0, (1.0 - visible) / 2.0, 1.0, (1.0 + visible) / 2.0]
            };
            TileContent::Video { rect: cell, uv_rect }
        }
    }
}

impl crate::error::Classify for LayoutError {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::BadInput("invalid_argument")
    }
}

#[cfg(test)]
mod tests;
