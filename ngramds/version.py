"""The package version (recorded in every file's header): the one source, which pyproject.toml
reads for the distribution's metadata."""
__version__ = "0.7.0"
