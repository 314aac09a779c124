//! I/O errors in words a person reads, shared by the plain and the TLS
//! connection code.

use std::io;

/// An I/O error in words: `connection refused`, not `Connection refused (os error 111)`.
pub fn describe(e: &io::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.find(" (os error") {
        s.truncate(i);
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => s,
    }
}
