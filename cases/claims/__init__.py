"""Theft-loss insurance claims (丢失险理赔): eligibility, the steps, settlement."""
