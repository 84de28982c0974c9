"""The Anycost GAN training pipeline (multi-resolution, adaptive-channel, encoder, directions).

Installed as `anycost_train` from the `training/` source root; the stages are built by the
training issues on top of the model library in `anycost`.
"""
