"""Segmentation models of DSNet, GDC and DDSM, built by name: ``build(name, num_classes, **config)``."""

from repro.models.registry import available, build, config_keys, default_config, describe

__all__ = ["available", "build", "config_keys", "default_config", "describe"]
