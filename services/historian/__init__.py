"""Historian service: stores every normalised event, feature vector, score and state change."""
