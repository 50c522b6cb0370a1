"""Images: the same methods on image tensors (B, C, H, W) and on latents (article §4-§6 at
image scale). Data, the image run config and its training state, latents, the classifier
metric, the command-line trainer and multi-GPU training."""
