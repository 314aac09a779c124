//! The one-line text editor behind every text field (the input line, the
//! login form's fields, the group-name prompt), and the edits the keys map to.
//! Positions count characters, not bytes, so the cursor never splits one.

/// A one-line text editor: the text and a cursor, in characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Editor {
    text: String,
    cursor: usize,
}

/// An edit of the focused text field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Type a character at the cursor.
    Insert(char),
    /// Paste text at the cursor.
    Paste(String),
    /// Delete before the cursor.
    Backspace,
    /// Delete at the cursor.
    Delete,
    /// Delete the word before the cursor.
    DeleteWord,
    /// Delete everything.
    Clear,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor to the start.
    Home,
    /// Cursor to the end.
    End,
}

impl Editor {
    /// An editor holding `text`, the cursor at its end.
    pub(crate) fn with(text: &str) -> Editor {
        Editor {
            text: text.to_owned(),
            cursor: text.chars().count(),
        }
    }

    /// The text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, in characters from the start.
    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    /// Applies an edit.
    pub(crate) fn apply(&mut self, edit: &Edit) {
        let len = self.text.chars().count();
        match edit {
            Edit::Insert(c) => self.insert(&c.to_string()),
            Edit::Paste(s) => self.insert(&s.replace(['\r', '\n'], " ")),
            Edit::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            Edit::Delete if self.cursor < len => {
                let at = self.byte(self.cursor);
                self.text.remove(at);
            }
            Edit::DeleteWord => {
                let chars: Vec<char> = self.text.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && chars[start - 1] != ' ' {
                    start -= 1;
                }
                let (a, b) = (self.byte(start), self.byte(self.cursor));
                self.text.replace_range(a..b, "");
                self.cursor = start;
            }
            Edit::Clear => *self = Editor::default(),
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(len),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = len,
            Edit::Backspace | Edit::Delete => {}
        }
    }

    /// Takes the text out, leaving the editor empty.
    pub(crate) fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    fn insert(&mut self, s: &str) {
        let at = self.byte(self.cursor);
        self.text.insert_str(at, s);
        self.cursor += s.chars().count();
    }

    fn byte(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }
}
