"""Deployment tests: the serving wheel, the image, the Kubernetes manifests, the corpus job."""
