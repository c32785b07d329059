"""Unit tests of the scheduling framework and its plugins."""
