//! Tile motion: a cell eased from where it is drawn to where the layout wants it, over the
//! layout's `transition_ms`. A new target while a move is under way starts from the drawn
//! position, so moves never jump.

use super::RectF;

/// Two cells closer than this (in every coordinate) count as the same place.
const SAME_PLACE_PX: f32 = 0.01;

/// The cubic ease-in-out of progress `p` (0..1): slow start, slow end, 0.5 at half time.
pub fn ease_in_out(p: f32) -> f32 {
    let p = p.clamp(0.0, 1.0);
    if p < 0.5 { 4.0 * p * p * p } else { 1.0 - (-2.0 * p + 2.0).powi(3) / 2.0 }
}

/// One tile's move from `from` to `to`, starting at `start_ms` and lasting `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    pub from: RectF,
    pub to: RectF,
    pub start_ms: f64,
    pub duration_ms: f64,
}

impl Motion {
    /// A tile resting at `cell` (a tile that appears is cut in: it starts here).
    pub fn still(cell: RectF) -> Motion {
        Motion { from: cell, to: cell, start_ms: 0.0, duration_ms: 0.0 }
    }

    /// Where the tile is drawn at `t_ms`.
    pub fn at(&self, t_ms: f64) -> RectF {
        if self.duration_ms <= 0.0 || t_ms >= self.start_ms + self.duration_ms {
            return self.to;
        }
        let progress = ((t_ms - self.start_ms) / self.duration_ms).max(0.0) as f32;
        self.from.lerp(&self.to, ease_in_out(progress))
    }

    /// Whether the move is over at `t_ms`.
    pub fn done(&self, t_ms: f64) -> bool {
        self.duration_ms <= 0.0 || t_ms >= self.start_ms + self.duration_ms
    }

    /// The motion towards `to` from `t_ms` on: unchanged when `to` is already the target,
    /// otherwise a new move of `duration_ms` from where the tile is drawn at `t_ms` (a cut when
    /// `duration_ms` is 0).
    pub fn retarget(&self, t_ms: f64, to: RectF, duration_ms: f64) -> Motion {
        if same_place(&self.to, &to) {
            return *self;
        }
        if duration_ms <= 0.0 {
            return Motion::still(to);
        }
        Motion { from: self.at(t_ms), to, start_ms: t_ms, duration_ms }
    }
}

fn same_place(a: &RectF, b: &RectF) -> bool {
    (a.x - b.x).abs() < SAME_PLACE_PX
        && (a.y - b.y).abs() < SAME_PLACE_PX
        && (a.width - b.width).abs() < SAME_PLACE_PX
        && (a.height - b.height).abs() < SAME_PLACE_PX
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: RectF = RectF { x: 0.0, y: 0.0, width: 100.0, height: 50.0 };
    const B: RectF = RectF { x: 200.0, y: 100.0, width: 300.0, height: 150.0 };

    #[test]
    fn the_ease_is_symmetric_and_monotonic() {
        assert_eq!(ease_in_out(0.0), 0.0);
        assert_eq!(ease_in_out(1.0), 1.0);
        assert!((ease_in_out(0.5) - 0.5).abs() < 1e-6);
        assert!(ease_in_out(0.1) < 0.1 && ease_in_out(0.9) > 0.9, "slow at both ends");
        let mut last = 0.0;
        for i in 1..=100 {
            let v = ease_in_out(i as f32 / 100.0);
            assert!(v >= last);
            assert!((v + ease_in_out(1.0 - i as f32 / 100.0) - 1.0).abs() < 1e-5, "symmetric");
            last = v;
        }
        assert_eq!(ease_in_out(-1.0), 0.0);
        assert_eq!(ease_in_out(2.0), 1.0);
    }

    #[test]
    fn a_move_is_halfway_at_half_time_and_arrives() {
        let m = Motion::still(A).retarget(1000.0, B, 300.0);
        assert_eq!(m.at(1000.0), A);
        let mid = m.at(1150.0);
        assert!((mid.x - 100.0).abs() < 1e-3 && (mid.width - 200.0).abs() < 1e-3, "{mid:?}");
        assert_eq!(m.at(1300.0), B);
        assert_eq!(m.at(5000.0), B);
        assert!(!m.done(1299.0) && m.done(1300.0));
    }

    #[test]
    fn zero_duration_cuts() {
        let m = Motion::still(A).retarget(1000.0, B, 0.0);
        assert_eq!(m.at(1000.0), B);
        assert!(m.done(1000.0));
    }

    #[test]
    fn the_same_target_keeps_the_move_going() {
        let m = Motion::still(A).retarget(1000.0, B, 300.0);
        assert_eq!(m.retarget(1100.0, B, 300.0), m);
    }

    #[test]
    fn a_new_target_mid_move_starts_where_the_tile_is_drawn() {
        let m = Motion::still(A).retarget(1000.0, B, 300.0);
        let drawn = m.at(1150.0);
        let c = RectF { x: 0.0, y: 500.0, width: 100.0, height: 50.0 };
        let r = m.retarget(1150.0, c, 300.0);
        assert_eq!(r.at(1150.0), drawn, "no jump");
        assert_eq!(r.start_ms, 1150.0);
        assert_eq!(r.at(1450.0), c);
        let mid = r.at(1300.0);
        let expect = drawn.lerp(&c, 0.5);
        assert!((mid.x - expect.x).abs() < 1e-3 && (mid.y - expect.y).abs() < 1e-3);
    }
}
