"""The pure core: money, assets, identifiers and domain errors.

Nothing here imports a framework, a database driver, a chain library or the broker;
an import-linter contract keeps it so.
"""
