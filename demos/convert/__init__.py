"""Conversion between the demo folder and other formats: robomimic HDF5, LeRobot v3."""
