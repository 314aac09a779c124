//! How text breaks into screen lines. The model uses it to know where the
//! top of a conversation is (scrolling, fetching older history); the
//! conversation pane uses it to draw. Both must agree, so it lives here.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The narrowest a message body is wrapped to, however long the sender's
/// name: narrower panes clip instead.
const MIN_BODY_WIDTH: usize = 8;

/// `text` made safe to draw: tabs become spaces, carriage returns go, and
/// every other control character (escape sequences from a hostile peer
/// included) becomes U+FFFD. Newlines stay.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '\r')
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// The display width of `s` in terminal columns.
pub(crate) fn width(s: &str) -> usize {
    s.width()
}

/// The columns a message's prefix `HH:MM <sender> ` takes.
pub(crate) fn prefix_width(sender: &str) -> usize {
    width(sender) + 9
}

/// `text` broken into lines of at most `width` columns: at newlines, then
/// between words where possible, else inside a word. Always at least one
/// line.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.split('\n') {
        wrap_paragraph(para, width, &mut out);
    }
    out
}

/// The lines of a message's body when its prefix (time and sender) takes
/// `prefix` columns of a pane `width` columns wide: the body wraps in the
/// columns right of the prefix, with continuation lines indented as far.
pub(crate) fn body_lines(prefix: usize, body: &str, width: usize) -> Vec<String> {
    wrap(body, width.saturating_sub(prefix).max(MIN_BODY_WIDTH))
}

fn wrap_paragraph(para: &str, width: usize, out: &mut Vec<String>) {
    let mut line = String::new();
    let mut used = 0;
    let mut first = true;
    for word in para.split(' ') {
        let w = word.width();
        let sep = usize::from(!first);
        first = false;
        if used + sep + w <= width {
            if sep == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += sep + w;
            continue;
        }
        if used > 0 {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        if w <= width {
            line.push_str(word);
            used = w;
            continue;
        }
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width && used > 0 {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += cw;
        }
    }
    out.push(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, width: usize, want: &[&str]) {
        assert_eq!(wrap(text, width), want, "{text:?} at {width}");
    }

    #[test]
    fn text_wraps_between_words_then_inside_long_ones() {
        check("hello world", 20, &["hello world"]);
        check("hello world", 5, &["hello", "world"]);
        check("hello world", 8, &["hello", "world"]);
        check("abcdefghij", 4, &["abcd", "efgh", "ij"]);
        check("a\n\nb", 10, &["a", "", "b"]);
        check("", 10, &[""]);
        check("日本語です", 4, &["日本", "語で", "す"]);
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(clean("a\x1b[2Jb\tc\r\nd"), "a\u{FFFD}[2Jb c\nd");
    }
}
