//! The command line's parsing and its mapping onto the engine's Config.

use super::*;

#[test]
fn the_cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn defaults_work_out_of_the_box() {
    let cli = Cli::try_parse_from(["confab-server"]).expect("no arguments parse");
    assert!(cli.command.is_none());
    assert_eq!(cli.serve.listen, "127.0.0.1:7878".parse().expect("valid"));
    assert_eq!(cli.serve.retention(), None);
    let c = cli.serve.engine_config();
    assert_eq!(c.max_clients, 10_000);
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert!(c.registration_open);
    assert!(!cli.serve.tls() && !cli.serve.insecure_plaintext);
}

#[test]
fn every_limit_option_reaches_the_engine_config() {
    let cli = Cli::try_parse_from([
        "confab-server",
        "--max-frame",
        "100000",
        "--max-frame-pre-auth",
        "2000",
        "--groups-per-user",
        "3",
        "--members-per-group",
        "4",
        "--max-groups",
        "5",
        "--history-page-max",
        "6",
        "--max-inflight",
        "7",
        "--roster-window",
        "8",
        "--roster-log",
        "9",
        "--replay-max",
        "10",
    ])
    .expect("parses");
    assert!(cli.serve.check().is_ok());
    let c = cli.serve.engine_config();
    assert_eq!((c.max_frame, c.max_frame_pre_auth), (100_000, 2000));
    assert_eq!(
        (c.groups_per_user, c.members_per_group, c.max_groups),
        (3, 4, 5)
    );
    assert_eq!((c.history_page_max, c.max_inflight), (6, 7));
    assert_eq!((c.roster_window, c.roster_log, c.replay_max), (8, 9, 10));
}

#[test]
fn the_device_options_reach_the_engine_config_and_check_their_ranges() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("confab-server").chain(args.iter().copied()))
    };
    let cli = parse(&[
        "--devices-per-user",
        "3",
        "--token-idle-days",
        "2",
        "--dedup-window-secs",
        "60",
        "--dedup-per-device",
        "500",
        "--read-markers-per-user",
        "7",
    ])
    .expect("parses");
    assert!(cli.serve.check().is_ok());
    let c = cli.serve.engine_config();
    assert_eq!((c.devices_per_user, c.read_markers_per_user), (3, 7));
    assert_eq!(c.token_idle, Duration::from_secs(2 * 86_400));
    assert_eq!(
        (c.dedup_window, c.dedup_per_device),
        (Duration::from_secs(60), 500)
    );
    let d = parse(&[]).expect("parses").serve.engine_config();
    let e = Config::default();
    assert_eq!(
        (
            d.devices_per_user,
            d.token_idle,
            d.dedup_window,
            d.dedup_per_device
        ),
        (
            e.devices_per_user,
            e.token_idle,
            e.dedup_window,
            e.dedup_per_device
        )
    );
    assert!(parse(&["--devices-per-user", "1001"]).is_err());
    assert!(parse(&["--devices-per-user", "0"]).is_err());
    let few = parse(&["--dedup-per-device", "10", "--max-inflight", "11"]).expect("parses");
    let text = few
        .serve
        .check()
        .expect_err("below max_inflight")
        .to_string();
    assert!(text.contains("'--dedup-per-device'"), "{text}");
}

#[test]
fn the_defaults_are_the_engines_and_max_frame_grows_with_max_body() {
    let cli = Cli::try_parse_from(["confab-server"]).expect("parses");
    let (ours, engine) = (cli.serve.engine_config(), Config::default());
    assert_eq!(
        (ours.max_frame, ours.max_frame_pre_auth, ours.replay_max),
        (
            engine.max_frame,
            engine.max_frame_pre_auth,
            engine.replay_max
        )
    );
    assert_eq!(
        (ours.roster_log, ours.max_groups),
        (engine.roster_log, engine.max_groups)
    );
    let cli = Cli::try_parse_from(["confab-server", "--max-body", "65535"]).expect("parses");
    assert_eq!(cli.serve.engine_config().max_frame, 65_535 + 1024);
    assert!(cli.serve.check().is_ok());
}

#[test]
fn a_limit_out_of_its_range_is_a_cli_error_naming_the_option() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("confab-server").chain(args.iter().copied()))
    };
    // Ranges clap checks on its own.
    assert!(parse(&["--max-frame", "0"]).is_err());
    assert!(parse(&["--max-frame", "16777217"]).is_err());
    assert!(parse(&["--replay-max", "0"]).is_err());
    assert!(parse(&["--groups-per-user", "0"]).is_err());
    // Ranges that depend on other limits.
    let small = parse(&["--max-frame", "4100", "--max-groups", "1"]).expect("parses");
    let e = small
        .serve
        .check()
        .expect_err("a 4096-byte body needs more");
    assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
    let text = e.to_string();
    assert!(
        text.contains("'--max-frame'") && text.contains("max_body"),
        "{text}"
    );
    let pre_auth = parse(&["--max-frame-pre-auth", "100"]).expect("parses");
    let text = pre_auth
        .serve
        .check()
        .expect_err("a LOGIN needs more")
        .to_string();
    assert!(
        text.contains("'--max-frame-pre-auth'") && text.contains("LOGIN"),
        "{text}"
    );
    let groups = parse(&["--max-groups", "100000"]).expect("parses");
    let text = groups
        .serve
        .check()
        .expect_err("the list needs more")
        .to_string();
    assert!(text.contains("group list"), "{text}");
}

#[test]
fn tls_options_go_together_or_not_at_all() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("confab-server").chain(args.iter().copied()))
    };
    assert!(parse(&["--tls-cert", "c.pem"]).is_err(), "needs a key");
    assert!(
        parse(&["--tls-key", "k.pem"]).is_err(),
        "needs a certificate"
    );
    assert!(parse(&["--tls-cert", "c", "--tls-key", "k", "--tls-self-signed"]).is_err());
    assert!(parse(&["--tls-self-signed", "--insecure-plaintext"]).is_err());
    let cli = parse(&["--tls-cert", "c", "--tls-key", "k"]).expect("a pair");
    assert!(cli.serve.tls());
    assert!(parse(&["--tls-self-signed"]).expect("parses").serve.tls());
}

#[test]
fn user_commands_take_the_global_data_dir_on_either_side() {
    for args in [
        &[
            "confab-server",
            "--data-dir",
            "/tmp/x",
            "user",
            "del",
            "bob",
        ][..],
        &[
            "confab-server",
            "user",
            "del",
            "bob",
            "--data-dir",
            "/tmp/x",
        ][..],
    ] {
        let cli = Cli::try_parse_from(args).expect("parses");
        assert_eq!(cli.serve.data_dir, PathBuf::from("/tmp/x"));
        assert!(matches!(
            cli.command,
            Some(Command::User(UserCommand::Del { .. }))
        ));
    }
    assert!(Cli::try_parse_from(["confab-server", "user", "add", "no spaces"]).is_err());
}

#[test]
fn the_web_port_and_its_allowed_origins_reach_the_server_options() {
    let cli = Cli::try_parse_from(["confab-server"]).expect("parses");
    assert!(
        crate::options(&cli.serve).web.is_none(),
        "no web port by default"
    );
    let cli = Cli::try_parse_from([
        "confab-server",
        "--web-listen",
        "127.0.0.1:0",
        "--web-allowed-origin",
        "https://a.example",
        "--web-allowed-origin",
        "https://b.example,https://c.example",
    ])
    .expect("parses");
    let web = crate::options(&cli.serve).web.expect("a web port");
    assert_eq!(web.listen, "127.0.0.1:0".parse().expect("valid"));
    assert_eq!(
        web.allowed_origins,
        [
            "https://a.example",
            "https://b.example",
            "https://c.example"
        ]
    );
}

#[test]
fn plaintext_on_a_public_web_port_is_refused_like_the_confab_port() {
    let parse = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("confab-server").chain(args.iter().copied()))
            .expect("parses")
    };
    let public = parse(&["--web-listen", "0.0.0.0:8080"]);
    match crate::server_tls(&public.serve) {
        Err(crate::Error::Plaintext(addr)) => assert_eq!(addr.port(), 8080),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let anyway = parse(&["--web-listen", "0.0.0.0:8080", "--insecure-plaintext"]);
    assert!(matches!(crate::server_tls(&anyway.serve), Ok(None)));
}
