"""Sandbox backends. This package knows nothing of Django: it takes plain arguments."""
