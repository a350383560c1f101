//! A layout's background picture: a PNG file named by a layout file, read once (bounded) and
//! kept as straight-alpha RGBA for the compositor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest background file read.
pub const MAX_IMAGE_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// The largest background picture, per side.
pub const MAX_IMAGE_SIDE_PX: u32 = 8192;

/// A decoded picture; clones share the pixels.
#[derive(Clone)]
pub struct LayoutImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes, straight alpha.
    pub rgba: Arc<Vec<u8>>,
}

impl std::fmt::Debug for LayoutImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LayoutImage({}, {}x{})", self.path.display(), self.width, self.height)
    }
}

impl PartialEq for LayoutImage {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.width == other.width && self.height == other.height
    }
}

impl LayoutImage {
    /// Reads the 8-bit PNG at `path` (grey, grey with alpha, RGB or RGBA; palettes expanded).
    /// The error is the reason, for the layout's error naming the field.
    pub fn read_png(path: &Path) -> Result<LayoutImage, String> {
        let size = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        if size > MAX_IMAGE_FILE_BYTES {
            return Err(format!("{}: {size} bytes, over the limit of {MAX_IMAGE_FILE_BYTES}", path.display()));
        }
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut decoder = png::Decoder::new_with_limits(
            std::io::BufReader::new(file),
            png::Limits { bytes: (MAX_IMAGE_SIDE_PX as usize).pow(2) * 4 },
        );
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let bad = |e: String| format!("{}: not a PNG this reads: {e}", path.display());
        let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
        let buffer_size = reader.output_buffer_size().ok_or_else(|| bad("too large".into()))?;
        let mut buffer = vec![0; buffer_size];
        let info = reader.next_frame(&mut buffer).map_err(|e| bad(e.to_string()))?;
        if info.width > MAX_IMAGE_SIDE_PX || info.height > MAX_IMAGE_SIDE_PX || info.width == 0 || info.height == 0 {
            return Err(format!(
                "{}: {}x{} pixels (1 to {MAX_IMAGE_SIDE_PX} per side)",
                path.display(),
                info.width,
                info.height
            ));
        }
        let pixels = buffer.get(..info.buffer_size()).unwrap_or_default();
        let rgba: Vec<u8> = match info.color_type {
            png::ColorType::Rgba => pixels.to_vec(),
            png::ColorType::Rgb => pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            png::ColorType::GrayscaleAlpha => pixels.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
            png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::Indexed => return Err(bad("palette not expanded".into())),
        };
        Ok(LayoutImage { path: path.to_path_buf(), width: info.width, height: info.height, rgba: Arc::new(rgba) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, data: &[u8]) {
        let file = std::fs::File::create(path).expect("create");
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(data).expect("data");
    }

    #[test]
    fn rgb_grey_and_rgba_pictures_become_rgba_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rgb = dir.path().join("rgb.png");
        write_png(&rgb, 2, 1, png::ColorType::Rgb, &[255, 0, 0, 0, 0, 255]);
        let image = LayoutImage::read_png(&rgb).expect("rgb");
        assert_eq!((image.width, image.height), (2, 1));
        assert_eq!(image.rgba.as_slice(), &[255, 0, 0, 255, 0, 0, 255, 255]);
        let grey = dir.path().join("grey.png");
        write_png(&grey, 1, 1, png::ColorType::GrayscaleAlpha, &[100, 50]);
        assert_eq!(LayoutImage::read_png(&grey).expect("grey").rgba.as_slice(), &[100, 100, 100, 50]);
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not a png at all").expect("write");
        let err = LayoutImage::read_png(&junk).expect_err("junk");
        assert!(err.contains("junk.png") && err.contains("not a PNG"), "{err}");
        let err = LayoutImage::read_png(&dir.path().join("missing.png")).expect_err("missing");
        assert!(err.contains("missing.png"), "{err}");
    }

    #[test]
    fn a_layout_file_names_its_background_beside_it_and_an_inline_layout_cannot() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("brand.png"), 1, 1, png::ColorType::Rgb, &[10, 20, 30]);
        let text = "name = \"branded\"\nbackground = \"#000000\"\nbackground_image = \"brand.png\"\n\
                    [[regions]]\nname = \"all\"\nx = 0.0\ny = 0.0\nwidth = 1.0\nheight = 1.0\n\
                    select = \"all\"\narrange = \"grid\"\nfit = \"cover\"\n";
        let file = dir.path().join("branded.toml");
        std::fs::write(&file, text).expect("write layout");
        let layout = crate::layout::Layout::load(file.to_str().expect("utf-8")).expect("loads");
        let image = layout.background_image.expect("a background picture");
        assert_eq!((image.width, image.height, image.rgba.as_slice()), (1, 1, &[10u8, 20, 30, 255][..]));
        let err = crate::layout::Layout::parse(crate::layout::INLINE_ORIGIN, text).expect_err("inline").to_string();
        assert!(err.contains("inline layout") && err.contains("background_image") && err.contains("line 3"), "{err}");
        let missing = text.replace("brand.png", "gone.png");
        std::fs::write(&file, missing).expect("write layout");
        let err = crate::layout::Layout::load(file.to_str().expect("utf-8")).expect_err("missing").to_string();
        assert!(err.contains("gone.png") && err.contains("background_image"), "{err}");
    }
}
