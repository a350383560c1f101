//! How tiles look: the `[tile]` settings of a layout (fractions of the canvas height), the
//! same resolved to pixels for one canvas, and what a placeholder shows (initials on a colour
//! derived from the participant id).

use super::Rgb;

/// Text on a label is never smaller than this.
pub const MIN_LABEL_PX: f32 = 10.0;

/// A region's tile settings as written in the layout, sizes as fractions of the canvas height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileSpec {
    pub corner_radius: f32,
    pub border: f32,
    pub border_color: Rgb,
    /// Border colour while the participant speaks; `None`: no highlight.
    pub highlight: Option<Rgb>,
    pub highlight_width: f32,
    /// Whether the tile carries a name label.
    pub label: bool,
    /// Label text height.
    pub label_size: f32,
    /// Fill of a tile without video.
    pub placeholder: Rgb,
    /// Whether a tile without video shows the participant's avatar (initials on their colour).
    pub avatar: bool,
    /// Whether video is shown at all (`false`: every tile is a placeholder).
    pub video: bool,
}

impl Default for TileSpec {
    /// Plain tiles: square, no border, no highlight, no label, a grey placeholder.
    fn default() -> TileSpec {
        TileSpec {
            corner_radius: 0.0,
            border: 0.0,
            border_color: Rgb([0, 0, 0]),
            highlight: None,
            highlight_width: 0.004,
            label: false,
            label_size: 0.026,
            placeholder: Rgb([0x2a, 0x2f, 0x36]),
            avatar: false,
            video: true,
        }
    }
}

impl TileSpec {
    /// The style in pixels on a canvas `canvas_height_px` tall.
    pub fn resolve(&self, canvas_height_px: u32) -> TileStyle {
        let h = canvas_height_px as f32;
        TileStyle {
            corner_radius_px: self.corner_radius * h,
            border_px: self.border * h,
            border: self.border_color,
            highlight: self.highlight,
            highlight_px: self.highlight_width * h,
            label: self.label,
            label_px: (self.label_size * h).max(MIN_LABEL_PX),
            avatar: self.avatar,
            placeholder: self.placeholder,
        }
    }
}

/// A tile's look in pixels for one canvas. The renderer clamps the corner radius to half the
/// tile's smaller side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileStyle {
    pub corner_radius_px: f32,
    pub border_px: f32,
    pub border: Rgb,
    /// Border colour while speaking; `None`: no speaking highlight.
    pub highlight: Option<Rgb>,
    pub highlight_px: f32,
    pub label: bool,
    /// Label text height, at least [`MIN_LABEL_PX`].
    pub label_px: f32,
    pub avatar: bool,
    pub placeholder: Rgb,
}

impl Default for TileStyle {
    fn default() -> TileStyle {
        TileSpec::default().resolve(0)
    }
}

/// A stable colour for a participant: the FNV-1a hash of the id picks the hue; saturation and
/// lightness are fixed at mid values so white initials read well on every colour.
pub fn avatar_rgb(participant_id: &str) -> Rgb {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in participant_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let hue_deg = (hash % 360) as f32;
    hsl_to_rgb(hue_deg, 0.50, 0.42)
}

/// HSL (hue in degrees, saturation and lightness 0..1) to 8-bit RGB.
fn hsl_to_rgb(hue_deg: f32, saturation: f32, lightness: f32) -> Rgb {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue_deg / 60.0;
    let x = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = lightness - chroma / 2.0;
    let channel = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb([channel(r), channel(g), channel(b)])
}

/// The initials of a name: the first letter of its first word and of its last word, upper
/// case ("Ada Lovelace" -> "AL", "ada" -> "A", "李雷" -> "李", "Émile Zola" -> "ÉZ"). A word's
/// letter is its first alphanumeric character with any combining marks that follow it; words
/// without one (punctuation, emoji) are skipped. Empty when the name has no letters.
pub fn initials(display_name: &str) -> String {
    let letters: Vec<String> = display_name.split_whitespace().filter_map(first_letter).collect();
    let mut out = String::new();
    match letters.as_slice() {
        [] => {}
        [only] => out.push_str(only),
        [first, .., last] => {
            out.push_str(first);
            out.push_str(last);
        }
    }
    out
}

/// The first alphanumeric character of `word`, upper case, with its combining marks.
fn first_letter(word: &str) -> Option<String> {
    let mut chars = word.chars().skip_while(|c| !c.is_alphanumeric());
    let first = chars.next()?;
    let mut out: String = first.to_uppercase().collect();
    out.extend(chars.take_while(|&c| is_combining_mark(c)));
    Some(out)
}

/// Combining diacritical marks (the blocks that decomposed Latin, Greek and Cyrillic use).
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

impl super::Layout {
    /// Turns the name labels of every region on or off.
    pub fn set_labels(&mut self, on: bool) {
        self.tile.label = on;
        for region in &mut self.regions {
            region.tile.label = on;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_names_in_several_scripts() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("ada byron lovelace"), "AL");
        assert_eq!(initials("ada"), "A");
        assert_eq!(initials("李雷"), "李");
        assert_eq!(initials("山田 太郎"), "山太");
        assert_eq!(initials("Émile Zola"), "ÉZ");
        assert_eq!(initials("e\u{301}mile zola"), "E\u{301}Z");
        assert_eq!(initials("  Борис   Пастернак "), "БП");
        assert_eq!(initials("άλφα βήτα"), "ΆΒ");
        assert_eq!(initials("שרה כהן"), "שכ");
        assert_eq!(initials("(guest) bob"), "GB");
        assert_eq!(initials("🙂 Zoë"), "Z");
        assert_eq!(initials("straße"), "S");
        assert_eq!(initials("ß"), "SS");
        assert_eq!(initials(""), "");
        assert_eq!(initials(" -- "), "");
        assert_eq!(initials("user_42"), "U");
    }

    #[test]
    fn avatar_colours_are_stable_mid_tones_that_differ_between_ids() {
        let alice = avatar_rgb("alice");
        assert_eq!(alice, avatar_rgb("alice"), "same id, same colour");
        let ids = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
        let colours: std::collections::BTreeSet<[u8; 3]> = ids.iter().map(|id| avatar_rgb(id).0).collect();
        assert!(colours.len() >= 6, "ids spread over hues: {colours:?}");
        for id in ids {
            let Rgb([r, g, b]) = avatar_rgb(id);
            let luma = 0.2126 * f32::from(r) + 0.7152 * f32::from(g) + 0.0722 * f32::from(b);
            assert!((40.0..170.0).contains(&luma), "{id}: {r},{g},{b} is mid-toned (white text reads)");
        }
    }

    #[test]
    fn hsl_primaries() {
        assert_eq!(hsl_to_rgb(0.0, 1.0, 0.5), Rgb([255, 0, 0]));
        assert_eq!(hsl_to_rgb(120.0, 1.0, 0.5), Rgb([0, 255, 0]));
        assert_eq!(hsl_to_rgb(240.0, 1.0, 0.5), Rgb([0, 0, 255]));
        assert_eq!(hsl_to_rgb(0.0, 0.0, 0.5), Rgb([128, 128, 128]));
    }

    #[test]
    fn resolved_sizes_scale_with_the_canvas_height_and_labels_stay_readable() {
        let spec = TileSpec { corner_radius: 0.01, border: 0.002, label_size: 0.026, ..TileSpec::default() };
        let style = spec.resolve(1080);
        assert!((style.corner_radius_px - 10.8).abs() < 1e-3);
        assert!((style.border_px - 2.16).abs() < 1e-3);
        assert!((style.label_px - 28.08).abs() < 1e-3);
        assert_eq!(spec.resolve(100).label_px, MIN_LABEL_PX);
    }
}
