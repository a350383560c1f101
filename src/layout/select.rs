//! Who each region shows at one moment. Regions are resolved in file order and each camera or
//! screenshare is placed at most once:
//!
//! - `screenshare`: screenshares, newest (highest join order) first;
//! - `active_speaker`: the active speaker's camera, or (nobody has spoken yet, or their camera
//!   is not available) the first joiner's camera;
//! - `pinned`, `id`, `role`: cameras of those participants (`id`: in the order listed);
//! - `others`: every camera not taken by an earlier region;
//! - `all`: every camera and screenshare not taken by an earlier region.
//!
//! A screenshare without a picture yet is not placed anywhere (so the frame of its first
//! picture is the frame it appears, in its place). `single` takes the first of its selection
//! only, the others up to `max_participants`: the rest stay for later regions. An empty region
//! with a fallback replaces the whole layout by its fallback for that moment.

use super::{Arrange, Layout, Scene, Selector, Tile, WhenEmpty, arrange, display_order};

/// What a layout shows at one moment: the layout in effect (the one asked for, or the
/// fallback it fell to) and, for each of its regions that applies to the canvas, in file
/// order, the region's index and the `scene.on_stage` indices it shows in slot order.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection<'l> {
    pub layout: &'l Layout,
    pub regions: Vec<(usize, Vec<usize>)>,
}

impl Layout {
    /// Resolves the regions for `scene` on a `canvas_width` x `canvas_height` canvas,
    /// following fallbacks.
    pub fn select(&self, scene: &Scene<'_>, canvas_width: u32, canvas_height: u32) -> Selection<'_> {
        let order = display_order(scene);
        let mut taken = vec![false; scene.on_stage.len()];
        let mut regions = Vec::with_capacity(self.regions.len());
        for (index, region) in self.regions.iter().enumerate() {
            if !region.orientation.applies(canvas_width, canvas_height) {
                continue;
            }
            let mut picked = candidates(&region.select, scene, &order, &taken);
            let limit = if region.arrange == Arrange::Single { 1 } else { region.max_participants };
            picked.truncate(limit);
            if picked.is_empty()
                && let WhenEmpty::Fallback(fallback) = &region.when_empty
            {
                return fallback.select(scene, canvas_width, canvas_height);
            }
            for &i in &picked {
                taken[i] = true;
            }
            regions.push((index, picked));
        }
        Selection { layout: self, regions }
    }
}

impl Selection<'_> {
    /// The tiles of the selection, slots in the order given, in draw order: by z, then
    /// region file order, then slot.
    pub fn tiles(&self, scene: &Scene<'_>, canvas_width: u32, canvas_height: u32) -> Vec<Tile> {
        let mut tiles = Vec::new();
        for (index, members) in &self.regions {
            if let Some(region) = self.layout.regions.get(*index) {
                tiles.extend(arrange::region_tiles(region, members, scene, canvas_width, canvas_height));
            }
        }
        // Stable: region file order and slot order stay within one z.
        tiles.sort_by_key(|tile| tile.z);
        tiles
    }

    /// The `scene.on_stage` indices placed by any region.
    pub fn placed(&self) -> impl Iterator<Item = usize> + '_ {
        self.regions.iter().flat_map(|(_, members)| members.iter().copied())
    }
}

/// The entries of `scene` that `select` takes, in its order, among those not yet `taken`.
fn candidates(select: &Selector, scene: &Scene<'_>, order: &[usize], taken: &[bool]) -> Vec<usize> {
    let stage = &scene.on_stage;
    let free = |i: &usize| !taken[*i] && stage.get(*i).is_some_and(|s| !s.screenshare || s.picture.is_some());
    let cameras = || order.iter().copied().filter(free).filter(|&i| !stage[i].screenshare);
    match select {
        Selector::All => order.iter().copied().filter(free).collect(),
        Selector::Others => cameras().collect(),
        Selector::Screenshare => {
            let mut shares: Vec<usize> = order.iter().copied().filter(free).filter(|&i| stage[i].screenshare).collect();
            shares.sort_by(|&a, &b| {
                stage[b]
                    .join_order
                    .cmp(&stage[a].join_order)
                    .then_with(|| stage[a].participant_id.cmp(stage[b].participant_id))
            });
            shares
        }
        Selector::ActiveSpeaker => {
            let speaker = scene.active_speaker.and_then(|id| cameras().find(|&i| stage[i].participant_id == id));
            speaker.or_else(|| cameras().next()).into_iter().collect()
        }
        Selector::Pinned => cameras().filter(|&i| stage[i].pinned).collect(),
        Selector::Ids(ids) => {
            ids.iter().filter_map(|id| cameras().find(|&i| stage[i].participant_id == id.as_str())).collect()
        }
        Selector::Role(role) => cameras().filter(|&i| stage[i].role == Some(role.as_str())).collect(),
    }
}
