//! Text cut to a number of bytes: what the supervisor keeps of what a run
//! says (an output line, a `STATUS=`, an error) has a bound, and a file name
//! has one too.

/// Cuts `text` to at most `max` bytes, at the last character boundary at or
/// before `max`; returns how many bytes were cut off.
pub(crate) fn truncate_at_char(text: &mut String, max: usize) -> usize {
    if text.len() <= max {
        return 0;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut_off = text.len() - end;
    text.truncate(end);
    cut_off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_at_a_character_at_or_before_the_bound() {
        let mut text = "aé".to_owned();
        assert_eq!((truncate_at_char(&mut text, 2), text.as_str()), (2, "a"), "half an `é` is not kept");
        let mut text = "aé".to_owned();
        assert_eq!((truncate_at_char(&mut text, 3), text.as_str()), (0, "aé"));
        let mut text = "abc".to_owned();
        assert_eq!((truncate_at_char(&mut text, 0), text.as_str()), (3, ""));
    }
}
