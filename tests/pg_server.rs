//! The throw-away PostgreSQL of `tests/pg_support`: it starts as an unprivileged user, gives
//! each test its own database, and leaves nothing running once its last user is gone.

mod pg_support;

use std::sync::Arc;

use pg_support::{PgCluster, PgDatabase};

#[test]
fn each_test_gets_its_own_empty_database_on_a_running_server() {
    let a = PgDatabase::new();
    let b = PgDatabase::new();
    assert_ne!(a.name, b.name);
    a.psql("CREATE TABLE only_in_a (x BIGINT)");
    assert_eq!(
        b.psql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_a'"),
        "0"
    );
    assert_eq!(a.psql("SELECT current_user"), pg_support::USER);
}

#[test]
fn the_server_stops_and_its_folder_goes_when_the_last_user_drops_it() {
    // A cluster of its own: the shared one may be held by the other test meanwhile.
    let cluster = Arc::new(PgCluster::start());
    let port = cluster.port();
    let folder = cluster.path().to_path_buf();
    let db = cluster.database();
    assert_eq!(db.psql("SELECT 1"), "1");
    drop(db);
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} any more"
    );
    assert!(!folder.exists(), "{} is removed", folder.display());
}

#[test]
fn a_wrong_password_is_refused_over_tcp() {
    let db = PgDatabase::new();
    let url = db.url().replace(db.cluster.password(), "not-the-password");
    let out = std::process::Command::new(pg_support::bin_dir().join("psql"))
        .args(["-X", "-d", &url, "-c", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(!out.status.success());
}
