"""Imports every op family module (each registers its ops on import)."""
