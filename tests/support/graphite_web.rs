//! A real graphite-web (Debian's `graphite-web`, Django's development
//! server) reading a [`Carbon`](crate::Carbon)'s whisper files, with its
//! settings and database in a scratch directory; nothing under /etc is used.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, http, wait_until};

pub struct GraphiteWeb {
    child: Child,
    pub port: u16,
}

impl GraphiteWeb {
    /// Starts graphite-web on the whisper files in `whisper`; fails loudly
    /// when it is not installed.
    pub fn start(dir: &Path, whisper: &Path) -> GraphiteWeb {
        crate::require_installed(
            "/usr/bin/python3 -c 'import graphite.settings'",
            "graphite-web is missing: this test needs it (`apt-get install graphite-web`, which scripts/test does)",
        );
        std::fs::create_dir_all(dir.join("log")).unwrap();
        let settings = format!(
            "from graphite.settings import *\n\
             STORAGE_DIR = '{dir}/storage'\nWHISPER_DIR = '{whisper}'\nSTANDARD_DIRS = [WHISPER_DIR]\n\
             CERES_DIR = '{dir}/ceres'\nLOG_DIR = '{dir}/log'\nINDEX_FILE = '{dir}/index'\n\
             DATABASES = {{'default': {{'NAME': '{dir}/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}}}\n\
             CARBONLINK_HOSTS = []\n",
            dir = dir.display(),
            whisper = whisper.display(),
        );
        std::fs::write(dir.join("gwsettings.py"), settings).unwrap();
        let django = |args: &[&str]| {
            let mut command = Command::new("/usr/bin/python3");
            command
                .args(["-m", "django"])
                .args(args)
                .env("PYTHONPATH", dir)
                .env("DJANGO_SETTINGS_MODULE", "gwsettings")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command
        };
        let migrated = django(&["migrate", "--run-syncdb"]).status();
        assert!(
            migrated.is_ok_and(|status| status.success()),
            "graphite-web's database"
        );
        let port = free_port();
        let child = django(&["runserver", &format!("127.0.0.1:{port}"), "--noreload"])
            .spawn()
            .expect("start graphite-web");
        wait_until(Duration::from_secs(60), "graphite-web to answer", || {
            http::request(port, "GET", "/metrics/find?query=*", None)
                .is_ok_and(|answer| answer.status == 200)
        });
        GraphiteWeb { child, port }
    }

    /// `/render` of one target over the last minutes, as JSON series.
    pub fn render_json(&self, target: &str) -> serde_json::Value {
        let path = format!(
            "/render?target={}&from=-5min&format=json",
            http::encode(target)
        );
        let answer = http::get(self.port, &path);
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
        answer.json()
    }

    /// `/render` of one target as a PNG.
    pub fn render_png(&self, target: &str, title: &str) -> Vec<u8> {
        let path = format!(
            "/render?target={}&title={}&from=-70s&format=png&width=900&height=360&hideLegend=false",
            http::encode(target),
            http::encode(title)
        );
        let answer = http::get(self.port, &path);
        assert_eq!(answer.header("content-type"), Some("image/png"), "{target}");
        answer.body
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
