"""Applications built on every part below: the latent-digits experiment (``latent``) and ``analyze`` (where a
user's samples sit relative to the ridge of their training set). Only the CLI imports from here.
"""
