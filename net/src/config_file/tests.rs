use std::io::Write;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("a temp file");
    f.write_all(text.as_bytes()).expect("written");
    f
}

#[test]
fn settings_become_the_options_they_name_and_flags_take_booleans() {
    let f = file("max-body = 2048\nserver_name = \"chat\"\ninsecure-plaintext = true\ntls-self-signed = false\n");
    let mut settings = read(f.path()).expect("valid");
    settings.sort_by(|a, b| a.key.cmp(&b.key));
    let args: Vec<Vec<String>> = settings.into_iter().map(|s| s.args).collect();
    assert_eq!(
        args,
        vec![
            vec!["--insecure-plaintext".to_owned()],
            vec!["--max-body".to_owned(), "2048".to_owned()],
            vec!["--server-name".to_owned(), "chat".to_owned()],
            vec![],
        ]
    );
}

#[test]
fn every_error_is_reported_with_its_line() {
    let f = file("max-body = \"big\"\n\nno-such-thing = 1\nlisten = [1, 2]\nconfig = \"x\"\n");
    let errors = read(f.path()).expect_err("invalid");
    let shown = f.path().display().to_string();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for line in [1, 3, 4, 5] {
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{shown}:{line}: "))),
            "no error on line {line}: {errors:#?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("no-such-thing: no such setting")),
        "{errors:#?}"
    );
}

#[test]
fn a_syntax_error_names_its_line() {
    let f = file("max-body = 1\nmax-frame = = 2\n");
    let errors = read(f.path()).expect_err("invalid");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains(":2: "), "{errors:#?}");
}

#[test]
fn the_command_line_wins_over_the_file() {
    let f = file("max-body = 2048\nserver-name = \"from-file\"\n");
    let args: Vec<OsString> = ["confab-server", "--config"]
        .into_iter()
        .map(OsString::from)
        .chain([f.path().as_os_str().to_owned()])
        .chain(["--max-body".into(), "1000".into()])
        .collect();
    let cli = cli(&args).expect("valid");
    assert_eq!(cli.serve.max_body, 1000);
    assert_eq!(cli.serve.server_name, "from-file");
}
