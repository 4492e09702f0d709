"""Property files (yaml): model defaults, model-on-dataset defaults and ready-made presets."""
