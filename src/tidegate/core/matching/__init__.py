"""Matching: packages against advisories, with each ecosystem's version rules (`ranges`)."""
