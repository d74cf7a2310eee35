"""The main job, ``hotline-cti demo``: the controller and the simulated PBX replaying a busy hour, end to end."""
