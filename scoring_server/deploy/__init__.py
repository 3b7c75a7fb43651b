"""Deploying a model: container images (docker) and Kubernetes manifests (kubernetes)."""
