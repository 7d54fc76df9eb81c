//! The geometry of tumbling, hopping and cumulative windows as panes: windows start at
//! multiples of the slide (aligned to the Unix epoch), and each is a run of panes.

use runnel_runtime::Millis;

/// Window geometry in milliseconds; every value is positive and at most `MAX_WINDOW`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PaneLayout {
    /// The longest window: every window of a sliding layout, a whole period of a
    /// cumulative one.
    pub(super) size: Millis,
    /// Distance between window starts (a period for cumulative windows).
    pub(super) slide: Millis,
    pub(super) pane: Millis,
    /// Windows grow by `pane` from each start instead of all being `size` long.
    pub(super) cumulative: bool,
}

fn gcd(mut a: Millis, mut b: Millis) -> Millis {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl PaneLayout {
    /// Tumbling or hopping windows. Requires `0 < slide <= size`, checked by the spec.
    pub fn new(size: Millis, slide: Millis) -> Self {
        PaneLayout {
            size,
            slide,
            pane: gcd(size, slide),
            cumulative: false,
        }
    }

    /// Cumulative windows. Requires `0 < step` and `max_size` a multiple of `step`,
    /// checked by the spec.
    pub fn cumulative(step: Millis, max_size: Millis) -> Self {
        PaneLayout {
            size: max_size,
            slide: max_size,
            pane: step,
            cumulative: true,
        }
    }

    #[inline]
    pub(super) fn pane_start(&self, t: Millis) -> Millis {
        t - t.rem_euclid(self.pane)
    }

    /// End of the last window containing `t` (the one starting at or just before `t`;
    /// for cumulative windows, the end of `t`'s period).
    #[inline]
    pub(super) fn last_window_end(&self, t: Millis) -> Millis {
        t - t.rem_euclid(self.slide) + self.size
    }

    /// Start of the first window that ends after `t`: the first window containing `t`
    /// (sliding windows).
    #[inline]
    pub(super) fn first_window_start(&self, t: Millis) -> Millis {
        let earliest = t - self.size;
        earliest - earliest.rem_euclid(self.slide) + self.slide
    }

    /// The first end of a cumulative window after `t` (ends are multiples of the step).
    #[inline]
    pub(super) fn first_end_after(&self, t: Millis) -> Millis {
        t - t.rem_euclid(self.pane) + self.pane
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_arithmetic_is_aligned_to_epoch_zero() {
        let hop = PaneLayout::new(10, 4);
        assert_eq!(hop.pane, 2);
        assert_eq!(hop.pane_start(-1), -2);
        assert_eq!(hop.last_window_end(9), 18); // window [8, 18)
        assert_eq!(hop.first_window_start(9), 0); // window [0, 10)
        assert_eq!(hop.first_window_start(10), 4); // [0, 10) ends at 10
        assert_eq!(hop.last_window_end(-1), 6); // window [-4, 6)
    }

    #[test]
    fn cumulative_layout_has_panes_of_a_step_and_periods_of_the_max_size() {
        let cumulate = PaneLayout::cumulative(2, 6);
        assert_eq!(cumulate.pane, 2);
        assert_eq!(cumulate.pane_start(5), 4);
        assert_eq!(cumulate.last_window_end(5), 6); // [0, 6), the period of 5
        assert_eq!(cumulate.last_window_end(6), 12);
        assert_eq!(cumulate.last_window_end(-1), 0); // [-6, 0)
        assert_eq!(cumulate.first_end_after(4), 6);
        assert_eq!(cumulate.first_end_after(5), 6);
        assert_eq!(cumulate.first_end_after(-3), -2);
    }
}
