// Converts the RGBA8 canvas to NV12 (BT.709, limited range) with two render passes:
// `fs_y` renders the full-size R8 luma plane, `fs_uv` renders the half-size RG8
// chroma plane, each chroma sample being the average of a 2x2 block of pixels.

@group(0) @binding(0) var canvas: texture_2d<f32>;

const KR: f32 = 0.2126;
const KB: f32 = 0.0722;
const KG: f32 = 0.7152; // 1 - KR - KB

// One triangle covering the whole target: (-1,-1) (3,-1) (-1,3).
@vertex
fn vs_fullscreen(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let x = f32((index << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(index & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn luma(rgb: vec3<f32>) -> f32 {
    return dot(rgb, vec3<f32>(KR, KG, KB));
}

@fragment
fn fs_y(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<i32>(floor(pos.xy));
    let rgb = textureLoad(canvas, p, 0).rgb;
    let y = (16.0 + 219.0 * luma(rgb)) / 255.0;
    return vec4<f32>(y, 0.0, 0.0, 1.0);
}

@fragment
fn fs_uv(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let base = vec2<i32>(floor(pos.xy)) * 2;
    let rgb = (textureLoad(canvas, base, 0).rgb
        + textureLoad(canvas, base + vec2<i32>(1, 0), 0).rgb
        + textureLoad(canvas, base + vec2<i32>(0, 1), 0).rgb
        + textureLoad(canvas, base + vec2<i32>(1, 1), 0).rgb) * 0.25;
    let y = luma(rgb);
    let cb = (rgb.b - y) / (2.0 * (1.0 - KB));
    let cr = (rgb.r - y) / (2.0 * (1.0 - KR));
    return vec4<f32>((128.0 + 224.0 * cb) / 255.0, (128.0 + 224.0 * cr) / 255.0, 0.0, 1.0);
}
