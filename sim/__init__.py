"""Simulation: robosuite/MuJoCo environments, scripted experts, collection, evaluation."""
