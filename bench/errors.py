"""Exceptions that cross module boundaries, so the CLI can map them to exit codes."""


class ConfigError(ValueError):
    """A grid config, parameter or plugin name is invalid; raised before anything runs (exit 2)."""


class PluginError(ImportError):
    """A plugin file or entry point failed to import or register; names the plugin and its file."""


class DataError(ValueError):
    """A dataset on disk cannot give the splits asked for (missing folder, undecodable image, ...)."""
