//! Labels, avatars and named pictures uploaded once and kept on the GPU: each distinct (kind, text, size,
//! colour) is shaped, rasterised and uploaded the first time it is asked for, then only its
//! image id is handed out, so drawing them costs nothing per frame beyond the tile.

use std::collections::HashMap;

use super::text::TextRasterizer;
use super::{Compositor, GpuError};

/// Image ids handed out start here, far above any source or caller-chosen id.
pub const FIRST_OVERLAY_IMAGE_ID: u64 = 1 << 48;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OverlayKey {
    /// Text, text size and maximum width (f32 bits).
    Label {
        text: String,
        text_px: u32,
        max_width_px: u32,
    },
    Avatar {
        initials: String,
        rgb: [u8; 3],
        diameter_px: u32,
    },
    /// A picture the caller names (e.g. a layout's background file).
    Picture {
        name: String,
    },
}

/// The images of labels and avatars uploaded so far, by what they show.
#[derive(Debug)]
pub struct OverlayCache {
    text: TextRasterizer,
    images: HashMap<OverlayKey, (u64, (u32, u32))>,
    next_id: u64,
}

impl OverlayCache {
    /// A cache with its own [`TextRasterizer`] (fonts from `TESSERA_FONT_DIR` or
    /// /usr/share/fonts; fails when there are none).
    pub fn new() -> Result<Self, GpuError> {
        Ok(Self::with_rasterizer(TextRasterizer::new()?))
    }

    /// A cache using `text` to rasterise.
    pub fn with_rasterizer(text: TextRasterizer) -> Self {
        Self { text, images: HashMap::new(), next_id: FIRST_OVERLAY_IMAGE_ID }
    }

    /// The image id and size of the label of `text` ([`TextRasterizer::label`]), rasterised
    /// and uploaded to `compositor` the first time.
    pub fn label(
        &mut self,
        compositor: &mut Compositor,
        text: &str,
        text_px: f32,
        max_width_px: f32,
    ) -> Result<(u64, (u32, u32)), GpuError> {
        let key = OverlayKey::Label {
            text: text.to_owned(),
            text_px: text_px.to_bits(),
            max_width_px: max_width_px.to_bits(),
        };
        if let Some(&found) = self.images.get(&key) {
            return Ok(found);
        }
        let image = self.text.label(text, text_px, max_width_px);
        self.insert(compositor, key, &image)
    }

    /// The image id and size of the avatar of `initials` on `rgb` ([`TextRasterizer::avatar`]),
    /// rasterised and uploaded to `compositor` the first time.
    pub fn avatar(
        &mut self,
        compositor: &mut Compositor,
        initials: &str,
        rgb: [u8; 3],
        diameter_px: u32,
    ) -> Result<(u64, (u32, u32)), GpuError> {
        let key = OverlayKey::Avatar { initials: initials.to_owned(), rgb, diameter_px };
        if let Some(&found) = self.images.get(&key) {
            return Ok(found);
        }
        let image = self.text.avatar(initials, rgb, diameter_px);
        self.insert(compositor, key, &image)
    }

    /// The image id of the picture called `name` (straight-alpha RGBA, `width` x `height`),
    /// uploaded to `compositor` the first time it is asked for.
    pub fn picture(
        &mut self,
        compositor: &mut Compositor,
        name: &str,
        width: u32,
        height: u32,
        rgba: &[u8],
    ) -> Result<u64, GpuError> {
        let key = OverlayKey::Picture { name: name.to_owned() };
        if let Some(&(image_id, _)) = self.images.get(&key) {
            return Ok(image_id);
        }
        let image = super::RgbaImage { width, height, pixels: rgba.to_vec() };
        self.insert(compositor, key, &image).map(|(image_id, _)| image_id)
    }

    /// Number of images uploaded and kept.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether nothing has been uploaded yet.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Removes every image of this cache from `compositor` and forgets them.
    pub fn clear(&mut self, compositor: &mut Compositor) {
        for (_, (image_id, _)) in self.images.drain() {
            compositor.remove_image(image_id);
        }
    }

    /// The rasteriser, for images drawn some other way.
    pub fn rasterizer(&mut self) -> &mut TextRasterizer {
        &mut self.text
    }

    fn insert(
        &mut self,
        compositor: &mut Compositor,
        key: OverlayKey,
        image: &super::RgbaImage,
    ) -> Result<(u64, (u32, u32)), GpuError> {
        let image_id = self.next_id;
        compositor.upload_image(image_id, image.width, image.height, &image.pixels)?;
        self.next_id += 1;
        let entry = (image_id, (image.width, image.height));
        self.images.insert(key, entry);
        Ok(entry)
    }
}
