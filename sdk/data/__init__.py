"""Dataset engine: read → detect format → normalize → validate → stats → convert → split."""
