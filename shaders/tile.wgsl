// Draws one tile (a pixel-space rectangle) into the RGBA8 canvas.
//
// `fs_solid` fills the rectangle with a flat colour; `fs_video` samples the three
// planes of a limited-range I420 frame and converts YUV to R'G'B' with the
// coefficients in `tile.coeffs` (BT.601 or BT.709, chosen on the CPU).

struct Tile {
    // Destination rectangle in output pixels: x, y, width, height (top-left origin).
    rect: vec4<f32>,
    // Source crop in normalized coordinates: x0, y0, x1, y1.
    uv_rect: vec4<f32>,
    // Solid colour (RGB in 0..1, alpha unused).
    color: vec4<f32>,
    // YUV -> RGB: R = Y + x*Cr, G = Y - y*Cb - z*Cr, B = Y + w*Cb.
    coeffs: vec4<f32>,
    // Output (canvas) size in pixels in xy.
    target_size: vec4<f32>,
};

@group(0) @binding(0) var<uniform> tile: Tile;

@group(1) @binding(0) var plane_y: texture_2d<f32>;
@group(1) @binding(1) var plane_u: texture_2d<f32>;
@group(1) @binding(2) var plane_v: texture_2d<f32>;
@group(1) @binding(3) var plane_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Triangle strip of 4 vertices: (0,0) (1,0) (0,1) (1,1) in rectangle space.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let px = tile.rect.xy + corner * tile.rect.zw;
    let ndc = vec2<f32>(
        px.x / tile.target_size.x * 2.0 - 1.0,
        1.0 - px.y / tile.target_size.y * 2.0,
    );
    var out: VsOut;
    out.position = vec4<f32>(ndc, 0.0, 1.0);
    out.uv = mix(tile.uv_rect.xy, tile.uv_rect.zw, corner);
    return out;
}

@fragment
fn fs_solid(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(tile.color.rgb, 1.0);
}

@fragment
fn fs_video(in: VsOut) -> @location(0) vec4<f32> {
    let y = textureSample(plane_y, plane_sampler, in.uv).r;
    let u = textureSample(plane_u, plane_sampler, in.uv).r;
    let v = textureSample(plane_v, plane_sampler, in.uv).r;
    // Limited ("studio") range: Y in 16..235, Cb/Cr in 16..240 (8-bit code values).
    let luma = (y * 255.0 - 16.0) / 219.0;
    let cb = (u * 255.0 - 128.0) / 224.0;
    let cr = (v * 255.0 - 128.0) / 224.0;
    let k = tile.coeffs;
    let rgb = vec3<f32>(
        luma + k.x * cr,
        luma - k.y * cb - k.z * cr,
        luma + k.w * cb,
    );
    return vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
}
