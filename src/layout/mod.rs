//! Layouts as data (`layouts/*.toml`) and the pure geometry engine that turns
//! (layout, participants on stage at time t, canvas size) into tiles. No GPU here.
//!
//! - [`Layout`]: a parsed layout file: regions on a normalised canvas, each selecting
//!   participants ([`Selector`]) and arranging them ([`Arrange`]); [`Layout::arrange`] is the
//!   stateless placement of one moment.
//! - [`Director`]: the stateful side for a whole render: a [`LayoutTimeline`], slot order that
//!   survives from frame to frame, and eased moves when the arrangement changes.
//! - [`avatar_rgb`] and [`initials`]: what a placeholder tile shows.

mod arrange;
mod director;
mod error;
mod format;
mod grid;
mod image;
mod motion;
mod scene;
mod select;
mod style;

use std::io::Read;
use std::path::Path;

pub use arrange::fit_frame;
pub use director::{Director, LayoutTimeline};
pub use error::{LayoutError, Location};
pub use grid::{GridShape, grid_shape};
pub use image::{LayoutImage, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_SIDE_PX};
pub use motion::{Motion, ease_in_out};
pub use scene::{OnStage, Scene, display_order};
pub use select::Selection;
pub use style::{TileSpec, TileStyle, avatar_rgb, initials};

/// Built-in layouts, compiled in from `layouts/`.
const BUILTIN: &[(&str, &str)] = &[
    ("grid", include_str!("../../layouts/grid.toml")),
    ("speaker", include_str!("../../layouts/speaker.toml")),
    ("spotlight", include_str!("../../layouts/spotlight.toml")),
    ("screenshare", include_str!("../../layouts/screenshare.toml")),
    ("pip", include_str!("../../layouts/pip.toml")),
    ("audio-only", include_str!("../../layouts/audio-only.toml")),
    ("auto", include_str!("../../layouts/auto.toml")),
];

/// The names of [`BUILTIN`], in the same order.
const BUILTIN_NAMES: &[&str] = &["grid", "speaker", "spotlight", "screenshare", "pip", "audio-only", "auto"];

/// The origin [`Layout::parse`] is given for a layout a job carries inline.
pub const INLINE_ORIGIN: &str = "inline layout";

/// The largest layout file [`Layout::load`] reads.
pub const MAX_LAYOUT_FILE_BYTES: u64 = 1024 * 1024;

/// The most participants one region shows.
pub const MAX_REGION_PARTICIPANTS: usize = 49;

/// An RGB colour written as `#RRGGBB` in layout files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    /// Parses `#RRGGBB`.
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.is_ascii() {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Rgb([channel(0)?, channel(2)?, channel(4)?]))
    }
}

/// Which cameras and screenshares a region takes (see the module docs of `select.rs` for the
/// exact semantics). Regions are resolved in file order; each camera or share is placed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every camera and screenshare not taken by an earlier region.
    All,
    /// Screenshares with a picture, newest (highest join order) first.
    Screenshare,
    /// The active speaker's camera; before anyone has spoken, the first joiner's camera.
    ActiveSpeaker,
    /// Every camera not taken by an earlier region.
    Others,
    /// Cameras of the participants the job pins.
    Pinned,
    /// Cameras of these participants, in this order.
    Ids(Vec<String>),
    /// Cameras of the participants with this role.
    Role(String),
}

/// How a region lays out what it selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrange {
    /// Rows and columns shaped for the region's aspect ([`grid_shape`]), up to 49 tiles.
    Grid,
    /// A horizontal strip of equal 16:9 cells, centred, shrinking to fit.
    Row,
    /// A vertical strip of equal 16:9 cells, centred, shrinking to fit.
    Column,
    /// The first of the selection fills the region; the rest stay for later regions.
    Single,
}

/// How a frame fills its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// The whole frame is shown, letterboxed inside its cell.
    Contain,
    /// The cell is filled; the frame is cropped.
    Cover,
}

/// The canvases a region applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// Every canvas.
    #[default]
    Any,
    /// Canvases at least as wide as they are tall.
    Landscape,
    /// Canvases taller than they are wide.
    Portrait,
}

impl Orientation {
    /// Whether a region with this orientation applies to a `width` x `height` canvas.
    pub fn applies(self, width: u32, height: u32) -> bool {
        match self {
            Orientation::Any => true,
            Orientation::Landscape => width >= height,
            Orientation::Portrait => height > width,
        }
    }
}

/// What an empty region does.
#[derive(Debug, Clone, PartialEq)]
pub enum WhenEmpty {
    /// Draws nothing.
    Hide,
    /// The whole layout is replaced by this (built-in) layout while the region is empty.
    Fallback(Box<Layout>),
}

/// A region of the canvas, in normalised coordinates (0..1 of width and height).
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// The region's name in the file (for people; regions are identified by index).
    pub name: String,
    /// Left edge, fraction of the canvas width.
    pub x: f32,
    /// Top edge, fraction of the canvas height.
    pub y: f32,
    /// Fraction of the canvas width.
    pub width: f32,
    /// Fraction of the canvas height.
    pub height: f32,
    /// The canvases the region applies to.
    pub orientation: Orientation,
    /// Whom it shows.
    pub select: Selector,
    /// How it lays them out.
    pub arrange: Arrange,
    /// How pictures fill their cells.
    pub fit: Fit,
    /// Gap between cells and around them, as a fraction of the canvas height.
    pub gap: f32,
    /// Draw order: higher on top; ties go by file order.
    pub z: i32,
    /// The most tiles it shows (1..=49); `single` shows one.
    pub max_participants: usize,
    /// What it does while it shows nobody.
    pub when_empty: WhenEmpty,
    /// The layout's `[tile]` defaults with this region's `[regions.tile]` overrides applied.
    pub tile: TileSpec,
}

impl Region {
    /// The region's area on a `canvas_width` x `canvas_height` canvas, in pixels.
    pub fn area_px(&self, canvas_width: u32, canvas_height: u32) -> RectF {
        RectF {
            x: self.x * canvas_width as f32,
            y: self.y * canvas_height as f32,
            width: self.width * canvas_width as f32,
            height: self.height * canvas_height as f32,
        }
    }
}

/// A parsed, validated layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The `name` in the file.
    pub name: String,
    /// The canvas colour behind the tiles.
    pub background: Rgb,
    /// A picture scaled over the whole canvas behind the tiles (layout files only).
    pub background_image: Option<LayoutImage>,
    /// Tile moves are eased over this many milliseconds; 0 cuts.
    pub transition_ms: u32,
    /// The `[tile]` defaults (each region holds its own resolved copy).
    pub tile: TileSpec,
    /// The regions in file order (at least one for each orientation).
    pub regions: Vec<Region>,
}

impl Layout {
    /// Loads a built-in layout by name (see [`Layout::builtin_names`]).
    pub fn builtin(name: &str) -> Result<Layout, LayoutError> {
        let text = builtin_text(name).ok_or_else(|| unknown(name))?;
        Layout::parse(&format!("layouts/{name}.toml"), text)
    }

    /// The names of the built-in layouts.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// The built-in `grid`, the default layout.
    pub fn grid() -> Layout {
        // The built-in files are checked by the tests: this never falls back.
        Layout::builtin("grid").unwrap_or_else(|_| Layout {
            name: "grid".into(),
            background: Rgb([0x10, 0x14, 0x18]),
            background_image: None,
            transition_ms: 0,
            tile: TileSpec::default(),
            regions: Vec::new(),
        })
    }

    /// Parses and validates a layout's text. `origin` names it in errors: the file's path, or
    /// `"inline layout"` for one carried by a job.
    pub fn parse(origin: &str, text: &str) -> Result<Layout, LayoutError> {
        format::parse(origin, text, &mut Vec::new())
    }

    /// A built-in layout by name, else the layout file at that path (at most
    /// [`MAX_LAYOUT_FILE_BYTES`] read).
    pub fn load(name_or_path: &str) -> Result<Layout, LayoutError> {
        if builtin_text(name_or_path).is_some() {
            return Layout::builtin(name_or_path);
        }
        let path = Path::new(name_or_path);
        let looks_like_a_path = name_or_path.contains(['/', '\\']) || name_or_path.ends_with(".toml");
        if !looks_like_a_path && !path.exists() {
            return Err(unknown(name_or_path));
        }
        let read_error = |source| LayoutError::Read { path: name_or_path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = String::new();
        file.take(MAX_LAYOUT_FILE_BYTES + 1).read_to_string(&mut text).map_err(read_error)?;
        if text.len() as u64 > MAX_LAYOUT_FILE_BYTES {
            return Err(LayoutError::TooLarge { path: name_or_path.to_owned(), limit_bytes: MAX_LAYOUT_FILE_BYTES });
        }
        Layout::parse(name_or_path, &text)
    }

    /// Places the scene on a canvas of `canvas_width` x `canvas_height` pixels, statelessly:
    /// slots in selection order, no motion (the [`Director`] adds both). Tiles come in draw
    /// order (z, region file order, slot); each tile's `participant_index` indexes `scene.on_stage`.
    pub fn arrange(&self, scene: &Scene<'_>, canvas_width: u32, canvas_height: u32) -> Vec<Tile> {
        self.select(scene, canvas_width, canvas_height).tiles(scene, canvas_width, canvas_height)
    }

    /// Places pictures already in display order (participant `i` joined `i`-th; `None`: no
    /// video at that moment, a placeholder tile); `participant_index` indexes `pictures`.
    pub fn place(&self, pictures: &[Option<(u32, u32)>], canvas_width: u32, canvas_height: u32) -> Vec<Tile> {
        let ids: Vec<String> = (0..pictures.len()).map(|i| format!("p{i}")).collect();
        let scene = Scene {
            on_stage: ids
                .iter()
                .zip(pictures)
                .enumerate()
                .map(|(i, (id, picture))| OnStage::camera(id, i, *picture))
                .collect(),
            active_speaker: None,
        };
        self.arrange(&scene, canvas_width, canvas_height)
    }
}

fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

fn unknown(name: &str) -> LayoutError {
    LayoutError::Unknown { name: name.to_owned(), known: BUILTIN_NAMES.join(", ") }
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
    /// The centre point.
    pub fn center(&self) -> (f32, f32) {
        (self.x + self.width / 2.0, self.y + self.height / 2.0)
    }

    /// Whether `other` lies within this rectangle (to `tolerance_px`).
    pub fn contains(&self, other: &RectF, tolerance_px: f32) -> bool {
        other.x >= self.x - tolerance_px
            && other.y >= self.y - tolerance_px
            && other.x + other.width <= self.x + self.width + tolerance_px
            && other.y + other.height <= self.y + self.height + tolerance_px
    }

    /// Whether the two rectangles share more than `tolerance_px` in both directions.
    pub fn overlaps(&self, other: &RectF, tolerance_px: f32) -> bool {
        self.x < other.x + other.width - tolerance_px
            && other.x < self.x + self.width - tolerance_px
            && self.y < other.y + other.height - tolerance_px
            && other.y < self.y + self.height - tolerance_px
    }

    /// The rectangle `amount` of the way from `self` to `to` (0 = self, 1 = to).
    pub fn lerp(&self, to: &RectF, amount: f32) -> RectF {
        let mix = |a: f32, b: f32| a + (b - a) * amount;
        RectF {
            x: mix(self.x, to.x),
            y: mix(self.y, to.y),
            width: mix(self.width, to.width),
            height: mix(self.height, to.height),
        }
    }

    /// The area in square pixels.
    pub fn area(&self) -> f32 {
        self.width * self.height
    }
}

/// What a tile shows.
#[derive(Debug, Clone, PartialEq)]
pub enum TileContent {
    /// Draw the participant's frame into `rect`, showing the part `uv_rect` (x0, y0, x1, y1
    /// normalised) of it.
    Video { rect: RectF, uv_rect: [f32; 4] },
    /// No video (none at that moment, or the layout shows none): fill the cell with this
    /// colour; when the tile's `style.avatar` is set, the avatar ([`avatar_rgb`],
    /// [`initials`]) goes on top of it.
    Placeholder(Rgb),
}

/// A tile's identity across frames: whose camera or screenshare it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    /// The participant's id.
    pub participant_id: String,
    /// The screenshare rather than the camera.
    pub screenshare: bool,
}

/// One thing to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Stable identity across frames.
    pub key: TileKey,
    /// Index into `scene.on_stage` (or into the pictures given to [`Layout::place`]).
    pub participant_index: usize,
    /// The cell the tile owns (while a move is under way, where it is drawn now).
    pub cell: RectF,
    pub content: TileContent,
    /// The region's tile style, in pixels for this canvas.
    pub style: TileStyle,
    /// Draw order: higher on top.
    pub z: i32,
    /// Whether the participant is speaking now (draw the highlight, if the style has one).
    pub speaking: bool,
    /// The size of the current picture, if any (`None` too when the layout shows no video),
    /// so that a moved cell can be re-fitted.
    pub picture: Option<(u32, u32)>,
    /// The region's fit, for [`Tile::refit`].
    pub fit: Fit,
}

impl Tile {
    /// Moves the tile to `cell`, fitting its picture to it again.
    pub fn refit(&mut self, cell: RectF) {
        self.cell = cell;
        if let (TileContent::Video { .. }, Some((width, height))) = (&self.content, self.picture) {
            self.content = fit_frame(cell, width, height, self.fit);
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
#[cfg(test)]
mod tests_builtin;
#[cfg(test)]
mod tests_director;
#[cfg(test)]
mod tests_format;
