"""Helpers the test fixtures build on; no tests here."""
