"""Anycost Editor: GAN-based photo editing with anycost generators (model library and backend)."""
__version__ = "0.1.0"
