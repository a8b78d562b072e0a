"""Docker Engine backend: ``DockerBackend`` implements ``provisioning.base.Backend``."""

from provisioning.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
