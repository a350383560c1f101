//! The stateful side of layouts over a whole render, still pure and deterministic: which
//! layout applies when ([`LayoutTimeline`]), slot order per region that survives from frame to
//! frame, and eased moves ([`Motion`]) when the arrangement changes.
//!
//! Slot stability: tiles that stay in a region keep their order; a tile that enters a region
//! while another leaves it in the same frame takes the leaver's slot (the speaker swap in
//! `speaker`); other newcomers append; leavers' slots close up.

use std::collections::BTreeMap;

use super::{Layout, LayoutError, Motion, Scene, Tile, TileKey};

/// Which layout applies from when: `(at_ms, layout)` sorted by time, the first at 0.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutTimeline {
    entries: Vec<(u64, Layout)>,
}

impl LayoutTimeline {
    /// Sorts `entries` by time; when none starts at 0 the default `grid` applies until the
    /// first. Two entries at the same time are refused.
    pub fn new(mut entries: Vec<(u64, Layout)>) -> Result<LayoutTimeline, LayoutError> {
        entries.sort_by_key(|(at_ms, _)| *at_ms);
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(LayoutError::DuplicateTime { at_ms: pair[0].0 });
        }
        if entries.first().is_none_or(|(at_ms, _)| *at_ms > 0) {
            entries.insert(0, (0, Layout::builtin("grid")?));
        }
        Ok(LayoutTimeline { entries })
    }

    /// One layout for the whole call.
    pub fn single(layout: Layout) -> LayoutTimeline {
        LayoutTimeline { entries: vec![(0, layout)] }
    }

    /// The layout in effect at `t_ms`: the last entry at or before it.
    pub fn at(&self, t_ms: f64) -> &Layout {
        let after = self.entries.partition_point(|(at_ms, _)| *at_ms as f64 <= t_ms);
        // `entries` is never empty and its first entry is at 0.
        &self.entries[after.saturating_sub(1)].1
    }

    /// The entries, sorted, the first at 0.
    pub fn entries(&self) -> &[(u64, Layout)] {
        &self.entries
    }
}

/// Places the scene of each output frame: the layout of the moment, slots kept stable, moves
/// eased. Give it the frames in time order.
#[derive(Debug, Clone)]
pub struct Director {
    timeline: LayoutTimeline,
    /// Slot order of each region shown in the last frame, by (layout name, region index).
    slots: BTreeMap<(String, usize), Vec<TileKey>>,
    /// The motion of each tile drawn in the last frame.
    motions: BTreeMap<TileKey, Motion>,
}

impl Director {
    /// A director over `timeline`, before its first frame.
    pub fn new(timeline: LayoutTimeline) -> Director {
        Director { timeline, slots: BTreeMap::new(), motions: BTreeMap::new() }
    }

    /// The timeline it follows.
    pub fn timeline(&self) -> &LayoutTimeline {
        &self.timeline
    }

    /// The layout in force at `t_ms` (before any fallback).
    pub fn layout_at(&self, t_ms: f64) -> &Layout {
        self.timeline.at(t_ms)
    }

    /// The tiles to draw at `t_ms` on a `canvas_width` x `canvas_height` canvas, in draw
    /// order; `participant_index` indexes `scene.on_stage`. Tiles that appear or disappear
    /// cut; tiles whose cell changes (a new arrangement, another layout from the timeline, a
    /// fallback) move there over the layout's `transition_ms`, and the content is fitted to
    /// where the tile is drawn.
    pub fn frame(&mut self, t_ms: f64, scene: &Scene<'_>, canvas_width: u32, canvas_height: u32) -> Vec<Tile> {
        let layout = self.timeline.at(t_ms);
        let mut selection = layout.select(scene, canvas_width, canvas_height);
        let key_of = |index: usize| {
            scene
                .on_stage
                .get(index)
                .map(|s| TileKey { participant_id: s.participant_id.to_owned(), screenshare: s.screenshare })
        };
        let mut slots = BTreeMap::new();
        for (region, members) in &mut selection.regions {
            let id = (selection.layout.name.clone(), *region);
            let keys: Vec<TileKey> = members.iter().filter_map(|&i| key_of(i)).collect();
            let previous = self.slots.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let order = stable_slots(previous, &keys);
            *members = order.iter().filter_map(|&k| members.get(k).copied()).collect();
            slots.insert(id, order.into_iter().filter_map(|k| keys.get(k).cloned()).collect());
        }
        self.slots = slots;

        let transition_ms = f64::from(selection.layout.transition_ms);
        let mut tiles = selection.tiles(scene, canvas_width, canvas_height);
        let mut motions = BTreeMap::new();
        let mut moving = Vec::with_capacity(tiles.len());
        for tile in &mut tiles {
            let target = tile.cell;
            let motion = match self.motions.get(&tile.key) {
                Some(motion) => motion.retarget(t_ms, target, transition_ms),
                None => Motion::still(target),
            };
            let drawn = motion.at(t_ms);
            moving.push(drawn != target);
            if drawn != target {
                tile.refit(drawn);
            }
            motions.insert(tile.key.clone(), motion);
        }
        self.motions = motions;
        // At one z, tiles on the move pass under the settled ones: a share promoted in its
        // first frame is never covered by the cameras making way for it.
        let mut order: Vec<usize> = (0..tiles.len()).collect();
        order.sort_by_key(|&i| (tiles[i].z, !moving[i]));
        let mut slots: Vec<Option<Tile>> = tiles.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots[i].take()).collect()
    }
}

/// The slot order of `current` (indices into it) given the region's `previous` slots: those
/// that stay keep their order, newcomers first fill the slots of leavers (in slot order), then
/// append in `current`'s order; the remaining leavers' slots close up.
pub(crate) fn stable_slots(previous: &[TileKey], current: &[TileKey]) -> Vec<usize> {
    let position = |key: &TileKey| current.iter().position(|k| k == key);
    let mut newcomers = (0..current.len()).filter(|&i| !previous.contains(&current[i]));
    let mut order = Vec::with_capacity(current.len());
    for key in previous {
        match position(key) {
            Some(stays) => order.push(stays),
            None => order.extend(newcomers.next()),
        }
    }
    order.extend(newcomers);
    order
}
