"""The transfer read model: every Transfer log the watchers reported, with its latest
status (detected, confirmed, reverted), whether or not an intent claimed it."""
