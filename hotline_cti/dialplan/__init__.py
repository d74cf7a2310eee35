"""Asterisk configuration generated from a merger config, and its static checks."""
