"""Routing: policies, the planner, and the attempt loop."""
