"""Figures: skeleton viewers, montages and animations."""
