//! A look round a group's units for one that holds the group back from
//! being ready, starting where the last look found one: a group whose
//! units become ready one at a time is looked over about once in all, not
//! once per unit (10k units reporting one at a time made 50M looks).

/// The position of the first of `units` that `holds_back`, looking from
/// `start` to the end, then from the beginning up to `start`: every unit
/// is looked at, at most once.
pub(crate) fn first_holding_back<T>(units: &[T], start: usize, holds_back: impl FnMut(&T) -> bool) -> Option<usize> {
    let start = if start < units.len() { start } else { 0 };
    let (before, from) = units.split_at(start);
    from.iter().chain(before).position(holds_back).map(|at| (start + at) % units.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_goes_round_once_from_the_start() {
        let ready = [true, false, true, false];
        assert_eq!(first_holding_back(&ready, 2, |ready| !ready), Some(3));
        assert_eq!(first_holding_back(&ready, 0, |ready| !ready), Some(1));
        // Past the end, as after units were removed: from the beginning.
        assert_eq!(first_holding_back(&ready, 9, |ready| !ready), Some(1));
        assert_eq!(first_holding_back(&[true, true], 1, |ready| !ready), None);
        assert_eq!(first_holding_back::<bool>(&[], 0, |ready| !ready), None);
    }

    #[test]
    fn a_unit_that_is_ready_again_behind_the_start_is_found() {
        let ready = [false, true, true];
        assert_eq!(first_holding_back(&ready, 1, |ready| !ready), Some(0));
    }

    #[test]
    fn units_becoming_ready_one_at_a_time_cost_one_look_each() {
        const UNITS: usize = 10_000;
        // In the units' own order, and in another.
        for stride in [1, 7919] {
            let mut ready = vec![false; UNITS];
            let (mut looks, mut start) = (0usize, 0);
            for step in 0..UNITS {
                ready[(step * stride) % UNITS] = true;
                let found = first_holding_back(&ready, start, |ready| {
                    looks += 1;
                    !ready
                });
                if let Some(at) = found {
                    start = at;
                }
            }
            assert!(looks <= 3 * UNITS, "{looks} looks for {UNITS} units becoming ready with a stride of {stride}");
        }
    }
}
