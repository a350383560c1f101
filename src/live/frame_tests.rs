use super::*;
use crate::gpu::{ColorMatrix, rgb_to_yuv_limited};

/// The Y, U and V planes of `frame`, each tightly packed.
fn planes(frame: &VideoFrame) -> [Vec<u8>; 3] {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let sizes = [(w, h), (w.div_ceil(2), h.div_ceil(2)), (w.div_ceil(2), h.div_ceil(2))];
    [0, 1, 2].map(|p| {
        let (pw, ph) = sizes[p];
        (0..ph)
            .flat_map(|r| {
                let start = frame.plane_offsets[p] + r * frame.plane_strides[p];
                frame.data[start..start + pw].to_vec()
            })
            .collect()
    })
}

/// A 4x2 I420 picture with padded rows: luma 0..8, U 100, 101, V 200, 201.
fn padded_i420() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let y = vec![0, 1, 2, 3, 99, 99, 4, 5, 6, 7, 99, 99];
    (y, vec![100, 101, 99], vec![200, 201, 99])
}

/// [`padded_i420`]'s planes as pushed.
fn padded_frame<'a>(planes: &'a [&'a [u8]]) -> PushedFrame<'a> {
    PushedFrame {
        format: PixelFormat::I420,
        width: 4,
        height: 2,
        planes,
        strides: &[6, 3, 3],
        rotation_deg: 0,
        bt709: false,
    }
}

#[test]
fn i420_with_strides_is_packed() {
    let (y, u, v) = padded_i420();
    let pushed = [&y[..], &u[..], &v[..]];
    let frame = padded_frame(&pushed);
    let picture = picture(&frame).expect("picture");
    assert_eq!((picture.width, picture.height, picture.bt709), (4, 2, false));
    assert_eq!(planes(&picture), [vec![0, 1, 2, 3, 4, 5, 6, 7], vec![100, 101], vec![200, 201]]);
}

#[test]
fn nv12_is_split_into_u_and_v() {
    let y: Vec<u8> = (0..8).collect();
    let uv = vec![100, 200, 101, 201];
    let frame = PushedFrame {
        format: PixelFormat::Nv12,
        width: 4,
        height: 2,
        planes: &[&y, &uv],
        strides: &[4, 4],
        rotation_deg: 0,
        bt709: true,
    };
    let picture = picture(&frame).expect("picture");
    assert!(picture.bt709);
    assert_eq!(planes(&picture), [(0..8).collect::<Vec<u8>>(), vec![100, 101], vec![200, 201]]);
}

#[test]
fn rotations_turn_the_picture_clockwise() {
    let (y, u, v) = padded_i420();
    let pushed = [&y[..], &u[..], &v[..]];
    let mut frame = PushedFrame { rotation_deg: 90, ..padded_frame(&pushed) };
    // 0 1 2 3      turned clockwise:  4 0
    // 4 5 6 7                         5 1 ...
    let turned = picture(&frame).expect("90");
    assert_eq!((turned.width, turned.height), (2, 4));
    assert_eq!(planes(&turned), [vec![4, 0, 5, 1, 6, 2, 7, 3], vec![100, 101], vec![200, 201]]);
    frame.rotation_deg = 180;
    let turned = picture(&frame).expect("180");
    assert_eq!(planes(&turned), [vec![7, 6, 5, 4, 3, 2, 1, 0], vec![101, 100], vec![201, 200]]);
    frame.rotation_deg = 270;
    let turned = picture(&frame).expect("270");
    assert_eq!((turned.width, turned.height), (2, 4));
    assert_eq!(planes(&turned), [vec![3, 7, 2, 6, 1, 5, 0, 4], vec![101, 100], vec![201, 200]]);
}

#[test]
fn rgba_becomes_bt709_limited_range() {
    let colours = [[200u8, 40, 40], [12, 200, 90], [90, 30, 250], [255, 255, 255], [0, 0, 0]];
    for rgb in colours {
        // An odd-sized picture of one colour: every block, whole or cut, has that chroma.
        let rgba: Vec<u8> = (0..3 * 3).flat_map(|_| [rgb[0], rgb[1], rgb[2], 7]).collect();
        let frame = PushedFrame {
            format: PixelFormat::Rgba,
            width: 3,
            height: 3,
            planes: &[&rgba],
            strides: &[12],
            rotation_deg: 0,
            bt709: false,
        };
        let picture = picture(&frame).expect("picture");
        assert!(picture.bt709);
        let [y, u, v] = planes(&picture);
        let want = rgb_to_yuv_limited(rgb, ColorMatrix::Bt709);
        for (got, want) in [(y[4], want[0]), (u[3], want[1]), (v[0], want[2])] {
            assert!(got.abs_diff(want) <= 1, "{rgb:?}: {got} for {want}");
        }
    }
}

#[test]
fn frames_that_lie_are_refused_by_field() {
    let (y, u, v) = padded_i420();
    let pushed = [&y[..], &u[..], &v[..]];
    let good = padded_frame(&pushed);
    let message = |frame: PushedFrame<'_>| picture(&frame).expect_err("refused").to_string();
    let short = [&y[..9], &u[..], &v[..]];
    assert!(
        message(PushedFrame { planes: &short, ..good }).contains("planes[0] 9 bytes, but 2 rows of stride 6 need 10")
    );
    assert!(
        message(PushedFrame { strides: &[3, 3, 3], ..good }).contains("strides[0] 3 is less than the row's 4 bytes")
    );
    assert!(message(PushedFrame { width: 0, ..good }).contains("0x2"));
    assert!(message(PushedFrame { width: 9000, ..good }).contains("9000x2"));
    assert!(message(PushedFrame { rotation_deg: 45, ..good }).contains("rotation 45"));
    assert!(message(PushedFrame { format: PixelFormat::Nv12, ..good }).contains("3 planes and 3 strides for Nv12"));
    let two = [&y[..], &u[..]];
    assert!(message(PushedFrame { planes: &two, ..good }).contains("2 planes and 3 strides"));
}
