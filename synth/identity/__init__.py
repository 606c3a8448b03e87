"""Identity sources for the renderer: procedural CG faces (default) and, later, photos."""

from synth.identity.procedural import HairStyle, Identity, hair_coverage, procedural_identity

__all__ = ["HairStyle", "Identity", "hair_coverage", "procedural_identity"]
