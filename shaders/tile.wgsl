// Draws one tile (a pixel-space rectangle) straight into the NV12 planes of the output
// (BT.709, limited range): the luma pass renders into the full-size R8 target, the chroma
// pass into the half-size RG8 target, with the same tile quads.
//
// `fs_solid_*` write the precomputed Y'CbCr of a flat colour. `fs_video_*` bilinearly sample
// the source's Y'CbCr texture (BT.709 Y', Cb, Cr in r, g, b; see source.wgsl).
//
// A chroma texel covers a 2x2 block of output pixels. The chroma pass draws each tile as
// instances of `vs_chroma`: instance 0 is the region of blocks whose four pixel centres are
// all inside the tile (sampled once at the block centre, no blending); instances 1 to 4
// are strips around it, out to one output pixel beyond the tile, drawn by the `_edge`
// shaders: they count which of the block's four pixel centres the tile covers, sample the
// source once at the mean of those centres and blend by that coverage over what lies
// below. Either way a chroma texel is the average of its block, with one sample standing
// in for the covered pixels.

struct Tile {
    // Destination rectangle in output pixels: x, y, width, height (top-left origin).
    rect: vec4<f32>,
    // Source crop in normalized coordinates: x0, y0, x1, y1.
    uv_rect: vec4<f32>,
    // Solid colour as BT.709 limited-range Y', Cb, Cr in 0..1 (w unused).
    color: vec4<f32>,
    // Output size in pixels in xy.
    target_size: vec4<f32>,
};

@group(0) @binding(0) var<uniform> tile: Tile;

@group(1) @binding(0) var source_ycc: texture_2d<f32>;
@group(1) @binding(1) var source_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Triangle strip of 4 vertices: (0,0) (1,0) (0,1) (1,1) in rectangle space. Positions are
// output pixels mapped to NDC, so the same quad rasterizes into both targets.
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

fn to_ndc(px: vec2<f32>) -> vec4<f32> {
    return vec4<f32>(px.x / tile.target_size.x * 2.0 - 1.0, 1.0 - px.y / tile.target_size.y * 2.0, 0.0, 1.0);
}

@vertex
fn vs_chroma(@builtin(vertex_index) index: u32, @builtin(instance_index) region: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let lo = tile.rect.xy;
    let hi = tile.rect.xy + tile.rect.zw;
    // Rectangles in output pixels: grown (by one pixel) and inner (whole blocks, even bounds).
    let g0 = lo - vec2<f32>(1.0);
    let g1 = hi + vec2<f32>(1.0);
    let i0 = min(2.0 * ceil((lo - vec2<f32>(0.5)) * 0.5), g1);
    let i1 = clamp(2.0 * ceil((hi - vec2<f32>(1.5)) * 0.5), i0, g1);
    var r0 = i0;
    var r1 = i1;
    switch region {
        case 1u: { r0 = g0; r1 = vec2<f32>(g1.x, i0.y); } // top, full width
        case 2u: { r0 = vec2<f32>(g0.x, i1.y); r1 = g1; } // bottom, full width
        case 3u: { r0 = vec2<f32>(g0.x, i0.y); r1 = vec2<f32>(i0.x, i1.y); } // left
        case 4u: { r0 = vec2<f32>(i1.x, i0.y); r1 = vec2<f32>(g1.x, i1.y); } // right
        default: {}
    }
    let px = mix(r0, r1, corner);
    var out: VsOut;
    out.position = to_ndc(px);
    out.uv = mix(tile.uv_rect.xy, tile.uv_rect.zw, (px - lo) / tile.rect.zw);
    return out;
}

struct Coverage {
    // Fraction of the block's four pixel centres inside the tile.
    alpha: f32,
    // Source coordinates of the mean of the covered centres.
    uv: vec2<f32>,
};

fn block_coverage(position: vec2<f32>) -> Coverage {
    let origin = floor(position) * 2.0;
    var count = 0.0;
    var sum = vec2<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let centre = origin + vec2<f32>(f32(i & 1u), f32(i >> 1u)) + vec2<f32>(0.5);
        let inside = all(centre >= tile.rect.xy) && all(centre < tile.rect.xy + tile.rect.zw);
        count += select(0.0, 1.0, inside);
        sum += select(vec2<f32>(0.0), centre, inside);
    }
    let mean = sum / max(count, 1.0);
    let t = (mean - tile.rect.xy) / tile.rect.zw;
    return Coverage(count * 0.25, mix(tile.uv_rect.xy, tile.uv_rect.zw, t));
}

@fragment
fn fs_solid_y(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(tile.color.x, 0.0, 0.0, 1.0);
}

@fragment
fn fs_solid_uv(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(tile.color.yz, 0.0, 1.0);
}

@fragment
fn fs_solid_uv_edge(in: VsOut) -> @location(0) vec4<f32> {
    let cover = block_coverage(in.position.xy);
    if cover.alpha == 0.0 {
        discard;
    }
    return vec4<f32>(tile.color.yz, 0.0, cover.alpha);
}

@fragment
fn fs_video_y(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(source_ycc, source_sampler, in.uv).r, 0.0, 0.0, 1.0);
}

@fragment
fn fs_video_uv(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(source_ycc, source_sampler, in.uv).gb, 0.0, 1.0);
}

@fragment
fn fs_video_uv_edge(in: VsOut) -> @location(0) vec4<f32> {
    let cover = block_coverage(in.position.xy);
    if cover.alpha == 0.0 {
        discard;
    }
    return vec4<f32>(textureSampleLevel(source_ycc, source_sampler, cover.uv, 0.0).gb, 0.0, cover.alpha);
}
