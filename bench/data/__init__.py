"""Data and episodes: task specs, datasets on disk, episode sources."""
