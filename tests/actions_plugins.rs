//! WordPress plugin actions on a real `wp-content/plugins` tree: disable and
//! re-enable by renaming (wp-cli is not installed here), the wp-cli argv when
//! it is, and bisection against a loopback "site" whose page fails (502)
//! while a faulty plugin's directory exists.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use triage502::action::{
    ActionSpec, ExecPolicy, IsolatePluginsAction, Plan, PluginAction, PluginOp, Tier, UndoList,
    execute,
};
use triage502::engine::PlannedAction;

const PLUGINS: &[&str] = &[
    "akismet",
    "contact-form-7",
    "evil",
    "jetpack",
    "woocommerce",
    "wordfence",
    "yoast",
];

struct Site {
    dir: tempfile::TempDir,
    /// An empty directory as PATH: no wp-cli, so plugins are renamed.
    empty_bin: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("wp-content/plugins");
        for p in PLUGINS {
            std::fs::create_dir_all(plugins.join(p)).unwrap();
            std::fs::write(plugins.join(p).join(format!("{p}.php")), "<?php\n").unwrap();
        }
        std::fs::write(plugins.join("hello.php"), "<?php\n").unwrap();
        std::fs::write(plugins.join("index.php"), "<?php // Silence is golden.\n").unwrap();
        let empty_bin = dir.path().join("empty-bin");
        std::fs::create_dir(&empty_bin).unwrap();
        Site { dir, empty_bin }
    }

    fn root(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn plugin(&self, name: &str) -> PathBuf {
        self.dir.path().join("wp-content/plugins").join(name)
    }

    fn policy(&self) -> ExecPolicy {
        ExecPolicy {
            interactive_consent: true,
            search_path: Some(self.empty_bin.clone().into_os_string()),
            ..ExecPolicy::default()
        }
    }

    /// A loopback site: 502 while any of `faulty` is enabled, else 200.
    fn serve(&self, faulty: &[&str]) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let paths: Vec<PathBuf> = faulty.iter().map(|f| self.plugin(f)).collect();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                let broken = paths.iter().any(|p| p.exists());
                let (status, body) = if broken {
                    ("502 Bad Gateway", "<h1>502 Bad Gateway</h1>")
                } else {
                    ("200 OK", "<h1>shop</h1>")
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        format!("http://{addr}/checkout")
    }

    fn enabled(&self) -> Vec<String> {
        PLUGINS
            .iter()
            .filter(|p| self.plugin(p).is_dir())
            .map(|p| (*p).to_owned())
            .collect()
    }
}

fn plugin_spec(root: &str, name: &str, op: PluginOp) -> ActionSpec {
    ActionSpec::Plugin(PluginAction {
        document_root: root.into(),
        name: name.into(),
        op,
    })
}

#[tokio::test]
async fn disable_and_enable_by_renaming_with_the_undo_recorded() {
    let site = Site::new();
    let mut undo = UndoList::new();
    let off = plugin_spec(&site.root(), "evil", PluginOp::Disable);
    let x = execute(&off, Tier::Reversible, &site.policy()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(!site.plugin("evil").exists());
    assert!(site.plugin("evil.disabled-by-triage502/evil.php").is_file());
    assert_eq!(x.result.argv[0], "mv");
    undo.apply(&x);
    assert_eq!(undo.still_changed().len(), 1);
    assert!(undo.still_changed()[0].starts_with("plugin evil is still disabled"));
    // Disabling twice is harmless and changes nothing.
    let again = execute(&off, Tier::Reversible, &site.policy()).await;
    assert!(again.result.ok && again.result.summary.contains("already"));
    // The recorded undo is an action that puts it back.
    let back = undo.entries()[0].undo.clone().unwrap();
    let x = execute(&back, Tier::Reversible, &site.policy()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(site.plugin("evil/evil.php").is_file());
    undo.apply(&x);
    assert!(undo.is_empty());
    // A name that would leave the plugins directory is refused.
    let bad = plugin_spec(&site.root(), "../../wp-config.php", PluginOp::Disable);
    assert!(
        !execute(&bad, Tier::Reversible, &site.policy())
            .await
            .result
            .ok
    );
    let missing = plugin_spec(&site.root(), "nope", PluginOp::Disable);
    let x = execute(&missing, Tier::Reversible, &site.policy()).await;
    assert!(!x.result.ok && x.result.summary.contains("no plugin nope"));
}

#[tokio::test]
async fn wp_cli_is_used_when_installed() {
    let site = Site::new();
    // wp-cli and a WordPress database cannot run here: a stand-in `wp`
    // records its argv, to prove the exact command.
    let bin = site.dir.path().join("wp-bin");
    std::fs::create_dir(&bin).unwrap();
    let log = site.dir.path().join("wp.log");
    std::fs::write(
        bin.join("wp"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\necho 'Success: Plugin deactivated.'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("wp"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = ExecPolicy {
        search_path: Some(bin.into_os_string()),
        ..site.policy()
    };
    let x = execute(
        &plugin_spec(&site.root(), "evil", PluginOp::Disable),
        Tier::Reversible,
        &policy,
    )
    .await;
    assert!(x.result.ok, "{:#?}", x.result);
    let args: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        &args[..6],
        [
            "plugin",
            "deactivate",
            "evil",
            &format!("--path={}", site.root()),
            "--skip-plugins",
            "--skip-themes",
        ]
    );
    assert!(x.result.output.contains("Success"));
    assert!(
        site.plugin("evil").is_dir(),
        "wp-cli does the work, not a rename"
    );
    assert!(x.undo[0].how.contains("activate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bisection_finds_the_faulty_plugin_and_leaves_the_others_enabled() {
    let site = Site::new();
    let url = site.serve(&["evil"]);
    let spec = ActionSpec::IsolatePlugins(IsolatePluginsAction {
        document_root: site.root(),
        url: url.clone(),
        suspects: vec![],
    });
    let offer = PlannedAction {
        node: "isolate".into(),
        title: "Isolate plugins".into(),
        tier: Tier::Reversible,
        argv: spec.argv(),
        description: spec.describe(),
        spec: Some(spec.clone()),
        undo: None,
        blocked: None,
    };
    let plan = Plan::new(&offer, "only the checkout fails", &site.policy());
    assert_eq!(plan.confirmation(), triage502::action::Confirmation::Yes);
    let x = execute(&spec, Tier::Reversible, &site.policy()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result.summary.starts_with("faulty plugin: evil (502"),
        "{}",
        x.result.summary
    );
    let mut expected: Vec<String> = PLUGINS.iter().map(|p| (*p).to_owned()).collect();
    expected.retain(|p| p != "evil");
    assert_eq!(site.enabled(), expected);
    assert!(site.plugin("hello.php").is_file());
    assert!(site.plugin("evil.disabled-by-triage502").is_dir());
    // Half at a time: far fewer probes than one per plugin and step.
    let probes = x
        .result
        .output
        .lines()
        .filter(|l| l.contains(" → "))
        .count();
    assert!(probes <= 8, "{probes} probes:\n{}", x.result.output);
    let mut undo = UndoList::new();
    undo.apply(&x);
    assert_eq!(undo.entries().len(), 1);
    assert!(undo.still_changed()[0].starts_with("plugin evil is still disabled"));
    assert_eq!(
        triage502::action::probe(&url).await.status,
        Some(200),
        "the page works with the culprit disabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_faulty_plugins_are_both_found() {
    let site = Site::new();
    let url = site.serve(&["evil", "jetpack"]);
    let spec = ActionSpec::IsolatePlugins(IsolatePluginsAction {
        document_root: site.root(),
        url,
        suspects: vec![],
    });
    let x = execute(&spec, Tier::Reversible, &site.policy()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(x.result.summary.contains("evil"), "{}", x.result.summary);
    assert!(x.result.summary.contains("jetpack"), "{}", x.result.summary);
    assert!(!site.enabled().contains(&"evil".to_owned()));
    assert!(!site.enabled().contains(&"jetpack".to_owned()));
    assert_eq!(site.enabled().len(), PLUGINS.len() - 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspects_narrow_the_search_and_a_non_plugin_fault_restores_everything() {
    let site = Site::new();
    let url = site.serve(&["evil"]);
    let spec = ActionSpec::IsolatePlugins(IsolatePluginsAction {
        document_root: site.root(),
        url,
        suspects: vec!["yoast".into(), "evil".into()],
    });
    let x = execute(&spec, Tier::Reversible, &site.policy()).await;
    assert!(x.result.ok, "{:#?}", x.result);
    assert!(
        x.result.output.contains("disabled 2 plugin(s)"),
        "{}",
        x.result.output
    );
    assert!(site.plugin("yoast").is_dir());

    // The page fails whatever plugins do: nothing is left disabled.
    let site = Site::new();
    // index.php is never a plugin: the page fails whatever is disabled.
    let url = site.serve(&["index.php"]);
    let spec = ActionSpec::IsolatePlugins(IsolatePluginsAction {
        document_root: site.root(),
        url,
        suspects: vec![],
    });
    let x = execute(&spec, Tier::Reversible, &site.policy()).await;
    assert!(!x.result.ok);
    assert!(
        x.result.summary.contains("not one of these plugins"),
        "{}",
        x.result.summary
    );
    assert_eq!(site.enabled().len(), PLUGINS.len());
    assert!(x.undo.is_empty());
}
