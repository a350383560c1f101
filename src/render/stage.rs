//! What an output with video shows at each tick: the performers on stage (cameras and
//! screenshares with their pictures and loudness) go to the active speaker detection and the
//! director (layouts over time, stable slots, motion); the tiles it places become GPU draws,
//! with names on labels and avatars rasterised once and cached in the compositor.

use super::RenderError;
use super::staging::Staging;
use crate::audio::speaker::DominantSpeaker;
use crate::gpu::{self, Compositor, DrawStyle, OverlayCache, RectPx, TileDraw};
use crate::layout::{
    Director, Fit, Layout, LayoutError, OnStage, RectF, Rgb, Scene, Tile, TileContent, avatar_rgb, fit_frame, initials,
};

/// Labels sit this far (fraction of the label's height) inside the tile's corner.
const LABEL_MARGIN: f32 = 0.5;
/// Avatars take this share of the smaller side of their tile.
const AVATAR_SHARE: f32 = 0.4;

/// A camera or screenshare on stage at one tick.
#[derive(Debug, Clone, Copy)]
pub struct Performer<'a> {
    pub participant_id: &'a str,
    pub screenshare: bool,
    /// The compositor source holding its picture.
    pub source_id: u64,
    /// The size of its current picture; `None` while it has none.
    pub picture: Option<(u32, u32)>,
    /// Its loudness in this tick (RMS, 0..1).
    pub level: f32,
    /// Rank of its first appearance in the call.
    pub join_order: usize,
}

/// The staging of one output, played tick by tick.
pub struct Stage {
    director: Director,
    speaker: DominantSpeaker,
    /// Who is who.
    staging: Staging,
}

impl Stage {
    pub fn new(staging: &Staging) -> Result<Stage, LayoutError> {
        Ok(Stage {
            director: staging.director()?,
            speaker: DominantSpeaker::new(staging.speaker.clone()),
            staging: Staging { layouts: Vec::new(), ..staging.clone() },
        })
    }

    /// One layout for the whole output, nobody named.
    pub fn single(layout: Layout) -> Result<Stage, LayoutError> {
        Stage::new(&Staging::single(layout))
    }

    /// Names a participant the job does not list (a live sender's display name); the job's
    /// own list keeps its names.
    pub fn introduce(&mut self, participant_id: &str, name: &str) {
        if self.staging.participant(participant_id).is_none() {
            self.staging.participants.push(super::staging::ParticipantInfo {
                id: participant_id.to_owned(),
                name: name.to_owned(),
                role: None,
                pinned: false,
            });
        }
    }

    /// The name on `participant_id`'s label: the job's, else the id.
    pub fn display_name<'a>(&'a self, participant_id: &'a str) -> &'a str {
        self.staging.display_name(participant_id)
    }

    /// The background of the layout in force at `t_ms`.
    pub fn background(&self, t_ms: f64) -> Rgb {
        self.director.layout_at(t_ms).background
    }

    /// Advances to `t_ms`: hears the performers, decides the active speaker, and returns the
    /// tiles to draw (indices into `performers`), in draw order.
    pub fn advance(
        &mut self,
        t_ms: f64,
        performers: &[Performer<'_>],
        canvas_width: u32,
        canvas_height: u32,
    ) -> Vec<Tile> {
        let mut levels: Vec<(&str, f32)> = Vec::with_capacity(performers.len());
        for p in performers.iter().filter(|p| !p.screenshare) {
            match levels.iter_mut().find(|(id, _)| *id == p.participant_id) {
                Some((_, level)) => *level = level.max(p.level),
                None => levels.push((p.participant_id, p.level)),
            }
        }
        let active = self.speaker.update(t_ms, &levels).map(str::to_owned);
        let (speaker, staging) = (&self.speaker, &self.staging);
        let on_stage = performers
            .iter()
            .map(|p| {
                let info = staging.participant(p.participant_id);
                OnStage {
                    participant_id: p.participant_id,
                    display_name: staging.display_name(p.participant_id),
                    screenshare: p.screenshare,
                    picture: p.picture,
                    speaking_level: p.level,
                    join_order: p.join_order,
                    role: info.and_then(|i| i.role.as_deref()),
                    pinned: info.is_some_and(|i| i.pinned),
                    // The highlight follows the active speaker while they talk.
                    speaking: !p.screenshare
                        && active.as_deref() == Some(p.participant_id)
                        && speaker.speaking(p.participant_id),
                }
            })
            .collect();
        let scene = Scene { on_stage, active_speaker: active.as_deref() };
        self.director.frame(t_ms, &scene, canvas_width, canvas_height)
    }

    /// The GPU draws of `tiles` (from [`Stage::advance`] at `t_ms` over the same `performers`):
    /// the layout's background picture, pictures, placeholders with avatars, borders, the
    /// speaking highlight and name labels.
    pub fn draws(
        &self,
        t_ms: f64,
        tiles: &[Tile],
        performers: &[Performer<'_>],
        compositor: &mut Compositor,
        overlays: &mut OverlayCache,
    ) -> Result<Vec<TileDraw>, RenderError> {
        let mut draws = Vec::with_capacity(tiles.len() * 3 + 1);
        if let Some(picture) = &self.director.layout_at(t_ms).background_image {
            let name = picture.path.to_string_lossy();
            let image_id = overlays.picture(compositor, &name, picture.width, picture.height, &picture.rgba)?;
            let (width, height) = compositor.output_size();
            let canvas = RectPx { x: 0.0, y: 0.0, width: width as f32, height: height as f32 };
            draws.push(image(canvas, image_id));
        }
        for tile in tiles {
            let Some(performer) = performers.get(tile.participant_index) else { continue };
            let style = &tile.style;
            let border = match (tile.speaking, style.highlight) {
                (true, Some(highlight)) => (style.highlight_px.max(style.border_px), highlight),
                _ => (style.border_px, style.border),
            };
            let draw_style =
                DrawStyle { corner_radius_px: style.corner_radius_px, border_px: border.0, border_rgb: border.1.0 };
            match &tile.content {
                TileContent::Video { rect, uv_rect } => draws.push(TileDraw {
                    rect: px(*rect),
                    content: gpu::TileContent::Video { source_id: performer.source_id, uv_rect: *uv_rect },
                    style: draw_style,
                }),
                TileContent::Placeholder(rgb) => {
                    let name = self.display_name(performer.participant_id);
                    let area = placeholder_rect(tile);
                    draws.push(TileDraw {
                        rect: px(area),
                        content: gpu::TileContent::Solid { rgb: rgb.0 },
                        style: draw_style,
                    });
                    if style.avatar {
                        let diameter = (area.width.min(area.height) * AVATAR_SHARE).round();
                        if diameter >= 8.0 {
                            let letters = initials(name);
                            let (image_id, _) = overlays.avatar(
                                compositor,
                                &letters,
                                avatar_rgb(performer.participant_id).0,
                                diameter as u32,
                            )?;
                            let (cx, cy) = area.center();
                            let rect = RectPx {
                                x: (cx - diameter / 2.0).round(),
                                y: (cy - diameter / 2.0).round(),
                                width: diameter,
                                height: diameter,
                            };
                            draws.push(image(rect, image_id));
                        }
                    }
                }
            }
            if style.label {
                draws.extend(self.label(tile, performer, compositor, overlays)?);
            }
        }
        Ok(draws)
    }

    /// The name label in the bottom-left corner of the tile's picture (or cell), when that is
    /// large enough for it.
    fn label(
        &self,
        tile: &Tile,
        performer: &Performer<'_>,
        compositor: &mut Compositor,
        overlays: &mut OverlayCache,
    ) -> Result<Option<TileDraw>, RenderError> {
        let text_px = tile.style.label_px.round();
        // On the picture itself where it is letterboxed inside its cell.
        let cell = match &tile.content {
            TileContent::Video { rect, .. } => *rect,
            TileContent::Placeholder(_) => placeholder_rect(tile),
        };
        if text_px < 6.0 || cell.height < text_px * 3.0 || cell.width < text_px * 4.0 {
            return Ok(None);
        }
        let margin = (text_px * LABEL_MARGIN).round();
        let max_width_px = (cell.width - 2.0 * margin).max(1.0) as u32;
        let name = self.display_name(performer.participant_id);
        let text = if performer.screenshare { format!("{name} (screen)") } else { name.to_owned() };
        let (image_id, (width, height)) = overlays.label(compositor, &text, text_px, max_width_px as f32)?;
        let rect = RectPx {
            x: (cell.x + margin).round(),
            y: (cell.y + cell.height - margin - height as f32).round(),
            width: width as f32,
            height: height as f32,
        };
        Ok(Some(image(rect, image_id)))
    }
}

/// Where a tile without a picture is drawn: its cell, or in a `contain` region the 16:9
/// part of it a camera's picture would take, so it lines up with the cameras beside it.
fn placeholder_rect(tile: &Tile) -> RectF {
    match (tile.fit, fit_frame(tile.cell, 16, 9, Fit::Contain)) {
        (Fit::Contain, TileContent::Video { rect, .. }) => rect,
        _ => tile.cell,
    }
}

fn image(rect: RectPx, image_id: u64) -> TileDraw {
    TileDraw { rect, content: gpu::TileContent::Image { image_id }, style: DrawStyle::default() }
}

fn px(rect: RectF) -> RectPx {
    RectPx { x: rect.x, y: rect.y, width: rect.width, height: rect.height }
}
