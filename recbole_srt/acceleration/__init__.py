"""Speed for every sequential model run through our trainer: fused attention, mixed precision, compilation, a
sync-free epoch loop, and faster dropout masks on CPUs."""
