//! Where `confab login --device` keeps a device token: one file per server
//! and user in `tokens/` of the config dir (`$CONFAB_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/confab`, else `~/.config/confab`), the directory
//! mode 0700 and the file 0600. The file holds the user, the device and
//! the token as 64 hex digits, one `key=value` a line.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use confab_engine::{Name, Token};

/// What a token file holds.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The account.
    pub user: Name,
    /// The device the token is for.
    pub device: Name,
    /// The token.
    pub token: Token,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("user", &self.user)
            .field("device", &self.device)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// The config dir's `tokens` directory, if a config dir can be named.
pub fn tokens_dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("CONFAB_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("confab")))
        .or_else(|| var("HOME").map(|d| d.join(".config").join("confab")))?;
    Some(dir.join("tokens"))
}

/// The file for `user` on `host:port` in `dir`: `HOST_PORT_user` (the
/// name in lower case, as the server compares names; characters other
/// than letters, digits, `.` and `-` in the host become `_`).
pub fn token_path(dir: &Path, host: &str, port: u16, user: &Name) -> PathBuf {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!(
        "{host}_{port}_{}",
        user.as_str().to_ascii_lowercase()
    ))
}

/// Writes `t` to `path` (mode 0600, replacing the file), creating its
/// directory with mode 0700.
pub fn save(path: &Path, t: &StoredToken) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut f = private_file(&tmp)?;
    write!(
        f,
        "user={}\ndevice={}\ntoken={}\n",
        t.user,
        t.device,
        t.token.to_hex()
    )?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

/// Reads a token file; `Ok(None)` if there is none.
pub fn load(path: &Path) -> io::Result<Option<StoredToken>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(str::trim)
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a confab token file");
    let user = field("user")
        .and_then(|u| Name::new(u).ok())
        .ok_or_else(bad)?;
    let device = field("device")
        .and_then(|d| Name::new(d).ok())
        .ok_or_else(bad)?;
    let token = field("token").and_then(Token::from_hex).ok_or_else(bad)?;
    Ok(Some(StoredToken {
        user,
        device,
        token,
    }))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("confab-token-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn stored() -> StoredToken {
        StoredToken {
            user: Name::new("Alice").unwrap(),
            device: Name::new("laptop").unwrap(),
            token: Token([0xab; 32]),
        }
    }

    #[test]
    fn a_saved_token_reads_back_and_its_file_names_server_and_user() {
        let dir = scratch("roundtrip").join("tokens");
        let path = token_path(&dir, "chat.example:1", 7878, &Name::new("Alice").unwrap());
        assert_eq!(path.file_name().unwrap(), "chat.example_1_7878_alice");
        assert_eq!(load(&path).unwrap(), None);
        save(&path, &stored()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(stored()));
        save(&path, &stored()).unwrap();
        assert!(!format!("{:?}", stored()).contains("abab"));
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_mode_0600_in_a_directory_of_mode_0700() {
        use std::os::unix::fs::PermissionsExt;
        let root = scratch("modes");
        fs::create_dir_all(root.join("tokens")).unwrap();
        fs::set_permissions(root.join("tokens"), fs::Permissions::from_mode(0o755)).unwrap();
        let path = root.join("tokens").join("t");
        save(&path, &stored()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&root.join("tokens")), 0o700);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_token_file_is_an_error() {
        let root = scratch("bad");
        fs::create_dir_all(&root).unwrap();
        let path = root.join("t");
        fs::write(&path, "token=zz\n").unwrap();
        assert!(load(&path).is_err());
        fs::remove_dir_all(root).unwrap();
    }
}
