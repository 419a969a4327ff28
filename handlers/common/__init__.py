"""Helpers shared by several capabilities: formatting (money, dates, labels) and dates as reps write them."""
