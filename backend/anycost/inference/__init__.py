"""The daemon's batch-1 synthesis on the CPU: fast.py draws what models.Generator.synthesis draws
(the reference, for every other use), with the convolution form of each layer chosen by measuring
it on this machine (conv_forms.py)."""
