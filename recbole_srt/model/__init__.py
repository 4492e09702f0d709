"""SRT itself: the model, its item text encoder, its negative sampler and its sampled softmax."""
