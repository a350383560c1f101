// Converts one uploaded limited-range I420 frame, once per upload, into an RGBA8 texture of
// the same size holding BT.709 limited-range Y', Cb, Cr (in r, g, b) of every pixel. The
// tile passes then need a single bilinear sample per output pixel instead of three.
//
// Luma is read exactly at each pixel; chroma is sampled bilinearly at the pixel centre.
// YUV -> R'G'B' uses the source matrix (BT.601 or BT.709, one pipeline each through the
// override constants below: R = Y + R_CR*Cr, G = Y - G_CB*Cb - G_CR*Cr, B = Y + B_CB*Cb),
// and R'G'B' is clamped to 0..1 before the conversion to BT.709 Y'CbCr.

@group(0) @binding(0) var plane_y: texture_2d<f32>;
// U in r, V in g.
@group(0) @binding(1) var plane_uv: texture_2d<f32>;
@group(0) @binding(2) var plane_sampler: sampler;

override R_CR: f32;
override G_CB: f32;
override G_CR: f32;
override B_CB: f32;

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

@fragment
fn fs_main(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
    let uv = pos.xy / vec2<f32>(textureDimensions(plane_y));
    let y = textureLoad(plane_y, vec2<i32>(floor(pos.xy)), 0).r;
    let chroma = textureSampleLevel(plane_uv, plane_sampler, uv, 0.0).rg;
    // Limited ("studio") range: Y in 16..235, Cb/Cr in 16..240 (8-bit code values).
    let luma = (y * 255.0 - 16.0) / 219.0;
    let cb = (chroma.r * 255.0 - 128.0) / 224.0;
    let cr = (chroma.g * 255.0 - 128.0) / 224.0;
    let rgb = clamp(
        vec3<f32>(luma + R_CR * cr, luma - G_CB * cb - G_CR * cr, luma + B_CB * cb),
        vec3<f32>(0.0),
        vec3<f32>(1.0),
    );
    let y709 = dot(rgb, vec3<f32>(KR, KG, KB));
    let cb709 = (rgb.b - y709) / (2.0 * (1.0 - KB));
    let cr709 = (rgb.r - y709) / (2.0 * (1.0 - KR));
    return vec4<f32>(
        (16.0 + 219.0 * y709) / 255.0,
        (128.0 + 224.0 * cb709) / 255.0,
        (128.0 + 224.0 * cr709) / 255.0,
        1.0,
    );
}
