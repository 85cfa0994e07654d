//! Command-line interface: subcommands and their flags, with help a newcomer can follow.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// oxlb gives Services of type LoadBalancer real IP addresses on clusters without a cloud
/// load balancer, announced by BGP or Layer 2 (ARP/NDP). It reads MetalLB's metallb.io
/// resources unchanged.
#[derive(Parser, Debug)]
#[command(name = "oxlb", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a configuration (MetalLB CRs, legacy ConfigMap or Helm values) and show
    /// what it would do. Exit 0 when valid, 1 with every error when not.
    ///
    /// Example: oxlb check -f examples/bgp-basic.yaml
    Check(CheckArgs),
    /// Convert a legacy MetalLB ConfigMap (key `config`) or old Helm values
    /// (`configInline:`) into metallb.io custom resources, printed as YAML.
    ///
    /// Example: oxlb convert -f old-configmap.yaml > resources.yaml
    Convert(ConvertArgs),
    /// Print the CustomResourceDefinitions of every metallb.io kind, to apply with
    /// `kubectl apply -f -`.
    Crds,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// YAML files or directories (read recursively, *.yaml / *.yml / *.json). Any mix of
    /// metallb.io resources, Services, Nodes, Namespaces, Secrets, EndpointSlices and
    /// ConfigMaps, several documents per file separated by `---`.
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Only resources in this namespace count as configuration (like MetalLB, which reads
    /// its own namespace). Resources without a namespace are taken to be in it.
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
    /// Output format: `text` for people, `json` for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The legacy file: a ConfigMap with key `config`, Helm values with `configInline:`,
    /// or the bare config YAML (`peers:`, `address-pools:` ...).
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    pub file: PathBuf,
    /// Namespace written into the generated resources.
    #[arg(short = 'n', long, default_value = "metallb-system")]
    pub namespace: String,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}
