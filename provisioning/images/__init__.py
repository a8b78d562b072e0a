"""Builders for local sandbox images and VM templates: no registry, Debian packages only."""
