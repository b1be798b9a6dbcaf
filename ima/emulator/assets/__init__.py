"""Bundled media the emulator serves: a 1-second 64x64 MP4 and its JPEG cover."""
