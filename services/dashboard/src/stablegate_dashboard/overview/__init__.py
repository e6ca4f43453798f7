"""The overview page: payment volume, conversion and speed at a glance, with charts."""
