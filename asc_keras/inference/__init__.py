"""Inference beyond single clips: sliding-window classification of long recordings."""
