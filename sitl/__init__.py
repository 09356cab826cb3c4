"""The test world: vehicle and target simulation, synthetic camera, simulated autopilots, campaigns."""
