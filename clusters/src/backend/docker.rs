//! Docker containers as a [`Backend`] ([`DockerCluster`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Backend, ClusterKind, Program};
use crate::cleanup::Registry;
use crate::db::Node;
use crate::docker::{self, DockerCluster, ImageContent};
use crate::error::ClusterError;
use crate::nft::NetHosts;

/// Where the image's programs are, on its `PATH`.
const IMAGE_BIN: &str = "/usr/local/bin";

/// Containers `n1…` from an image holding `content`, for the run in `run_dir`.
pub(super) fn create(
    run_dir: &Path,
    nodes: usize,
    content: &ImageContent,
) -> Result<DockerCluster, ClusterError> {
    let docker_error =
        |what: &str, e: docker::DockerError| ClusterError::Config(format!("{what}: {e}"));
    let image = docker::build_image_of(content)
        .map_err(|e| docker_error("cannot build the node image", e))?;
    let registry = Arc::new(crate::reserve::new_registry(
        run_dir,
        Path::new(crate::reserve::DIR),
        |_| true,
    )?);
    let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    DockerCluster::start(registry, &image, &refs)
        .map_err(|e| docker_error("cannot start the containers", e))
}

impl Backend for DockerCluster {
    fn kind(&self) -> ClusterKind {
        ClusterKind::Docker
    }

    fn nodes(&self) -> Vec<Node> {
        DockerCluster::nodes(self)
    }

    fn registry(&self) -> &Arc<Registry> {
        DockerCluster::registry(self)
    }

    fn net(&self) -> Result<NetHosts, ClusterError> {
        self.net_hosts()
    }

    /// Programs were put in the image, on its `PATH`.
    fn program(&self, local: &Path) -> Program {
        let name = local.file_name().map(PathBuf::from).unwrap_or_default();
        Program {
            path: Path::new(IMAGE_BIN).join(name),
            upload: false,
        }
    }

    fn teardown(mut self: Box<Self>) -> Result<(), ClusterError> {
        DockerCluster::teardown(&mut self).map_err(|e| ClusterError::Config(e.to_string()))
    }
}
