"""Signed evidence bundles of a report or a case for a court, their printable form and their verification."""
