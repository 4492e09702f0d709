"""GPU speed for every sequential model run through our trainer: fused attention, mixed precision, compilation."""
