"""Shared, dependency-light core of ausynth: AU names and scales, config loading, seeding,
the label schema and dataset format, the face-crop rule and the rig's AU basis.

Everything here is numpy-only; no module imports torch, pyrender or bpy.
"""
