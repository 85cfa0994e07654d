//! The real client stack builds: TLS (rustls with ring, the only crypto provider in the
//! tree) from a kubeconfig, as `run_controller` does in a cluster. Connecting is not
//! needed to catch a missing or ambiguous crypto provider.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

#[tokio::test]
async fn client_with_tls_builds_from_a_kubeconfig() {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(
        r#"
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: abc}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
"#,
    )
    .unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    assert_eq!(client.default_namespace(), "default");
}
