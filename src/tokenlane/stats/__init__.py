"""Measurement: observations in, frozen per-deployment estimates out."""
