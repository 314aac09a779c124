//! Group roles (issue 20): the creator owns a group and appoints
//! moderators, who take members out, mute them in the group and delete
//! the group's messages, through the headless client; roles and mutes
//! outlive a restart; anyone else is refused.

use crate::harness::Server;

#[test]
fn a_groups_owner_and_moderators_remove_mute_and_delete_and_it_survives_a_restart() {
    let server = Server::start();
    let (olga, mo, bob, eve) = (
        server.client("olga"),
        server.client("mo"),
        server.client("bob"),
        server.client("eve"),
    );
    olga.run(&["group", "create", "dev"]).ok();
    for c in [&mo, &bob, &eve] {
        c.run(&["group", "join", "dev"]).ok();
    }

    let refused = mo.run(&["group", "remove", "dev", "eve"]);
    assert!(
        refused.stderr.contains("NOT_GROUP_MODERATOR"),
        "{refused:?}"
    );
    let refused = bob.run(&["group", "appoint", "dev", "bob"]);
    assert!(
        refused.stderr.contains("NOT_GROUP_MODERATOR"),
        "{refused:?}"
    );
    olga.run(&["group", "appoint", "dev", "mo"]).ok();

    let mut watch = olga.listen();
    let run = mo.run(&["group", "remove", "dev", "eve", "--reason", "off topic"]);
    assert!(run.ok().contains(r#""action":"group-remove""#), "{run:?}");
    watch.wait_for("eve left", |v| {
        v["event"] == "left" && v["group"] == "dev" && v["user"] == "eve"
    });
    let gone = eve.run(&["send", "--to", "#dev", "hello?"]);
    assert!(gone.stderr.contains("NOT_A_MEMBER"), "{gone:?}");

    mo.run(&[
        "group", "mute", "dev", "bob", "--for", "1h", "--reason", "calm",
    ])
    .ok();
    let muted = bob.run(&["send", "--to", "#dev", "loud"]);
    assert!(
        muted.stderr.contains("MUTED") && muted.stderr.contains("#dev"),
        "{muted:?}"
    );
    bob.send("all", "the room is fine");

    let spam = olga.send("#dev", "dev spam");
    let room = olga.send("all", "room message");
    let refused = mo.run(&["delete", &room.to_string()]);
    assert!(
        refused.stderr.contains("NOT_OPERATOR"),
        "not mo's group: {refused:?}"
    );
    mo.run(&["delete", &spam.to_string()]).ok();
    watch.wait_for("the deletion", |v| {
        v["event"] == "deleted" && v["id"] == spam
    });
    drop(watch);

    // Roles and the mute are stored.
    let server = server.restart();
    let bob = server.client("bob");
    let muted = bob.run(&["send", "--to", "#dev", "still loud"]);
    assert!(
        muted.stderr.contains("MUTED"),
        "the mute outlived the restart: {muted:?}"
    );
    let mo = server.client("mo");
    mo.run(&["group", "unmute", "dev", "bob"]).ok();
    bob.send("#dev", "thanks");
    server
        .client("olga")
        .run(&["group", "dismiss", "dev", "mo"])
        .ok();
    let refused = mo.run(&["group", "mute", "dev", "bob"]);
    assert!(
        refused.stderr.contains("NOT_GROUP_MODERATOR"),
        "{refused:?}"
    );

    let audit = server.server_command(&["audit"]);
    for line in [
        "\tolga\tgroup-appoint\t#dev mo\t",
        "\tmo\tgroup-remove\t#dev eve\toff topic",
        "\tmo\tgroup-mute\t#dev bob\tcalm",
        "\tolga\tgroup-dismiss\t#dev mo\t",
    ] {
        assert!(audit.ok().contains(line), "{line:?} in {audit:?}");
    }
}

#[test]
fn the_command_line_removes_and_mutes_group_members_on_the_running_server_and_without_one() {
    let mut server = Server::start();
    let (olga, bob, eve) = (
        server.client("olga"),
        server.client("bob"),
        server.client("eve"),
    );
    olga.run(&["group", "create", "dev"]).ok();
    bob.run(&["group", "join", "dev"]).ok();
    eve.run(&["group", "join", "dev"]).ok();
    let mut watch = olga.listen();

    let run = server.server_command(&["group", "remove", "dev", "EVE", "--reason", "spam"]);
    assert!(run.ok().contains("group-remove eve in #dev"), "{run:?}");
    watch.wait_for("eve left", |v| v["event"] == "left" && v["user"] == "eve");
    let gone = eve.run(&["send", "--to", "#dev", "hi"]);
    assert!(gone.stderr.contains("NOT_A_MEMBER"), "{gone:?}");
    let again = server.server_command(&["group", "remove", "dev", "eve"]);
    assert_ne!(again.code, Some(0), "{again:?}");
    assert!(again.stderr.contains("not a member"), "{again:?}");

    server
        .server_command(&["group", "mute", "dev", "bob", "--for", "1h"])
        .ok();
    let muted = bob.run(&["send", "--to", "#dev", "hi"]);
    assert!(muted.stderr.contains("MUTED"), "applied at once: {muted:?}");

    drop(watch);
    server.kill();
    let run = server.server_command(&["group", "unmute", "dev", "bob"]);
    assert!(run.ok().contains("no server is running"), "{run:?}");
    let server = server.restart();
    server.client("bob").send("#dev", "free again");
    let audit = server.server_command(&["audit"]);
    assert!(
        audit
            .ok()
            .contains("\toperator\tgroup-remove\t#dev eve\tspam"),
        "{audit:?}"
    );
}
