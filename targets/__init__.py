"""Targets are data: a preset name maps to triple, cpu, features and machine parameters."""

from .target import PRESETS, Target, get_target  # noqa: F401
