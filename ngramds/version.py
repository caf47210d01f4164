"""The package version (recorded in every file's header)."""
__version__ = "0.1.0"
