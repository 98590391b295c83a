"""Intake channels that reach us from outside: each parses its own format and ends in
the one intake call (services/intake.py)."""
