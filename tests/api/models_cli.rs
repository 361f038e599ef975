//! `hearth models status` and `hearth models install --from`, run as a user would (the
//! real binary, files in temp directories).

use crate::common::{hearth_bin, models_dir};
use std::path::Path;
use std::process::Command;

/// Runs `hearth models <args>` in `cwd` with the model directory `model_dir`; returns
/// (success, stdout + stderr).
fn models(cwd: &Path, model_dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(hearth_bin())
        .arg("models")
        .args(args)
        .current_dir(cwd)
        .env("HEARTH__SEARCH__EMBEDDINGS__MODEL_DIR", model_dir)
        .env("HEARTH__SERVER__DATA_DIR", cwd.join("data"))
        .output()
        .expect("run hearth");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn status_names_every_file_and_install_copies_them_verified() {
    let cwd = tempfile::tempdir().unwrap();
    let empty = cwd.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, out) = models(cwd.path(), &empty, &["status"]);
    assert!(ok, "{out}");
    assert!(out.contains("model.onnx") && out.contains("MISSING") && out.contains("keyword search works"), "{out}");

    let target = cwd.path().join("installed");
    let (ok, out) = models(cwd.path(), &target, &["install", "--from", models_dir().to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("installed model.onnx") && out.contains("model files ready"), "{out}");
    let (ok, out) = models(cwd.path(), &target, &["status"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches(" ok ").count(), 8, "every file listed in SHA256SUMS, checked: {out}");
    assert!(out.contains("semantic search: can load"), "{out}");

    let (ok, out) = models(cwd.path(), &cwd.path().join("other"), &["install", "--from", empty.to_str().unwrap()]);
    assert!(!ok, "nothing to install from an empty directory: {out}");
    assert!(out.contains("nothing was installed") && !cwd.path().join("other/model.onnx").exists(), "{out}");
}
