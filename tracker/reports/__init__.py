"""Outputs for people: charts, comparison images, reports, CSV."""
